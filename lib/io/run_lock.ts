/**
 * One writer per run folder. `pretrain` holds an exclusive lock on `.rtdlab-lock` in the folder it trains
 * (the kernel's file lock: it goes when the process does, even on `kill -9`), so a second process pointed
 * at the same folder (`--resume runs/es-s1` typed for another run) is refused instead of deleting the first
 * one's temporary files and rewriting its metrics.jsonl; {@link refuseIfTraining} lets the tasks that
 * replace run folders (sweep, compare, demo) check the same lock. The file stays after the run (it names the
 * last writer's process id); only a held lock means a live writer.
 *
 * @module
 */

import { join } from "node:path";

/** The lock file's name inside a run folder. */
export const LOCK_FILE = ".rtdlab-lock";

/** The error for a folder a live process trains, naming it from what the lock file says. */
async function trainedError(runDir: string): Promise<Error> {
  let holder: { pid?: unknown; since?: unknown } = {};
  try {
    holder = JSON.parse(await Deno.readTextFile(join(runDir, LOCK_FILE)));
  } catch { /* being written: name no process */ }
  const who = typeof holder.pid === "number"
    ? `process ${holder.pid}${typeof holder.since === "string" ? ` (since ${holder.since})` : ""}`
    : "another process";
  return new Error(
    `${runDir} is being trained by ${who}: wait for it, or stop it (did you mean another run folder?)`,
  );
}

/** A run folder's lock: {@link acquire} it before writing, {@link release} it when done (idempotent). */
export class RunLock {
  #file: Deno.FsFile | null = null;
  /** The lock file's path. */
  readonly path: string;

  /** A lock on `runDir` (nothing is taken until {@link acquire}). */
  constructor(readonly runDir: string) {
    this.path = join(runDir, LOCK_FILE);
  }

  /** Takes the lock (the folder must exist); throws naming the process that holds it. */
  async acquire(): Promise<void> {
    if (this.#file) return;
    const f = await Deno.open(this.path, { read: true, write: true, create: true });
    if (!(await f.tryLock(true))) {
      f.close();
      throw await trainedError(this.runDir);
    }
    await f.truncate(0);
    await f.write(
      new TextEncoder().encode(JSON.stringify({ pid: Deno.pid, since: new Date().toISOString() })),
    );
    this.#file = f;
  }

  /** Gives the lock back (the file stays, unlocked). */
  release(): void {
    this.#file?.close(); // closing drops the kernel's lock
    this.#file = null;
  }
}

/**
 * Throws when a live process trains `runDir` (holds its lock): call it before deleting or replacing a run
 * folder. A folder without a lock file, or whose lock nobody holds, passes.
 */
export async function refuseIfTraining(runDir: string): Promise<void> {
  let f: Deno.FsFile;
  try {
    f = await Deno.open(join(runDir, LOCK_FILE), { read: true });
  } catch {
    return; // no lock file: never trained by a process that holds one
  }
  try {
    if (!(await f.tryLock(false))) throw await trainedError(runDir);
  } finally {
    f.close();
  }
}

/** Deletes run folder `dir` (if there), unless a live process trains it ({@link refuseIfTraining} throws). */
export async function removeRunFolder(dir: string): Promise<void> {
  await refuseIfTraining(dir);
  await Deno.remove(dir, { recursive: true }).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
}
