/**
 * Labelled tasks for downstream evaluation: the packaged ones by name, or a user file / folder.
 *
 * ```ts
 * import { loadTask } from "./lib/tasks/mod.ts";
 * const task = await loadTask("sentiment-yelp");            // fixed seeded split
 * const mine = await loadTask("data/my.csv", { labelColumn: "y", splitSeed: 1 });
 * ```
 *
 * @module
 */

import { capItems } from "./split.ts";
import { isPackagedTask, loadPackagedTask, PACKAGED_TASKS } from "./packaged.ts";
import { loadUserTask, type UserTaskOptions } from "./user.ts";
import type { TaskData } from "./types.ts";

export * from "./types.ts";
export { capItems, dedupeExamples, DEFAULT_FRACTIONS, stratifiedSplit } from "./split.ts";
export {
  BROWN_GENRES,
  isPackagedTask,
  loadPackagedTask,
  PACKAGED_SPLIT_SEED,
  PACKAGED_TASKS,
  type PackagedTaskName,
} from "./packaged.ts";
export { loadUserTask, parseDelimited, parseJsonl, type UserTaskOptions } from "./user.ts";
export { emailToText, htmlToText } from "./email.ts";

/** Options of {@link loadTask}. */
export interface LoadTaskOptions extends UserTaskOptions {
  /** Keep a seeded random subset of at most this many training examples. */
  maxTrain?: number;
  /** Keep at most this many dev and this many test examples (seeded). */
  maxEval?: number;
}

/**
 * Loads a task: a packaged name ({@link PACKAGED_TASKS}) or a path to a JSONL/CSV/TSV file or a
 * folder of train/dev/test files. Caps, when given, subsample each split with the split seed.
 */
export async function loadTask(nameOrPath: string, opts: LoadTaskOptions = {}): Promise<TaskData> {
  await checkTaskName(nameOrPath);
  const task = isPackagedTask(nameOrPath)
    ? await loadPackagedTask(nameOrPath, opts.splitSeed)
    : await loadUserTask(nameOrPath, opts);
  return capTask(task, opts.maxTrain, opts.maxEval);
}

/** Throws, naming the packaged tasks, unless `nameOrPath` is one of them or an existing file or folder. */
export async function checkTaskName(nameOrPath: string): Promise<void> {
  if (isPackagedTask(nameOrPath) || await Deno.stat(nameOrPath).then(() => true, () => false)) return;
  throw new Error(
    `unknown task "${nameOrPath}": not one of ${
      Object.keys(PACKAGED_TASKS).join(", ")
    }, and no such file or folder`,
  );
}

/** Applies train and dev/test caps (seeded from the split seed); records them in `split.caps`. */
export function capTask(task: TaskData, maxTrain?: number, maxEval?: number): TaskData {
  if (maxTrain === undefined && maxEval === undefined) return task;
  const seed = (task.split.seed ?? 0) ^ 0x0ca9;
  return {
    ...task,
    train: capItems(task.train, maxTrain, seed),
    dev: capItems(task.dev, maxEval, seed + 1),
    test: capItems(task.test, maxEval, seed + 2),
    split: { ...task.split, caps: { train: maxTrain, eval: maxEval } },
  };
}

/** One line per split: sizes and label counts (for logs and --help). */
export function describeTask(task: TaskData): string {
  const counts = (xs: { label: number }[]) => {
    const c = new Array(task.labels.length).fill(0);
    for (const x of xs) c[x.label]++;
    return c;
  };
  const tr = counts(task.train);
  const top = task.labels.map((l, i) => [l, tr[i]] as const).sort((a, b) => b[1] - a[1]).slice(0, 4)
    .map(([l, n]) => `${l} ${n}`).join(", ");
  return `${task.name}: ${task.labels.length} classes, train ${task.train.length} / dev ${task.dev.length} / ` +
    `test ${task.test.length}${task.pair ? " (pairs)" : ""}; largest classes in train: ${top}`;
}
