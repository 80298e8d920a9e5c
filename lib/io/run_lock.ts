/**
 * One writer per run folder. `pretrain` holds `.rtdlab-lock` (the process id) in the folder it trains, so
 * a second process pointed at the same folder (`--resume runs/es-s1` typed for another run) is refused
 * instead of deleting the first one's temporary files and rewriting its metrics.jsonl. A lock left by a
 * process that has died is taken over (on Linux, where /proc says which processes live; elsewhere the
 * message says which file to remove).
 *
 * @module
 */

import { join } from "node:path";

/** The lock file's name inside a run folder. */
export const LOCK_FILE = ".rtdlab-lock";

/** Whether process `pid` is alive: null where this system cannot say. */
function processAlive(pid: number): boolean | null {
  if (Deno.build.os !== "linux") return null;
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/** A run folder's lock: {@link acquire} it before writing, {@link release} it when done (idempotent). */
export class RunLock {
  #held = false;
  /** The lock file's path. */
  readonly path: string;

  constructor(readonly runDir: string) {
    this.path = join(runDir, LOCK_FILE);
  }

  /** Takes the lock (the folder must exist); throws naming the process that holds it. */
  async acquire(): Promise<void> {
    if (this.#held) return;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const f = await Deno.open(this.path, { write: true, createNew: true });
        await f.write(
          new TextEncoder().encode(JSON.stringify({ pid: Deno.pid, since: new Date().toISOString() })),
        );
        f.close();
        this.#held = true;
        return;
      } catch (e) {
        if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      }
      let holder: { pid?: unknown; since?: unknown } = {};
      try {
        holder = JSON.parse(await Deno.readTextFile(this.path));
      } catch { /* torn or vanished: judged below as a dead holder */ }
      const pid = typeof holder.pid === "number" ? holder.pid : null;
      const alive = pid === null ? false : processAlive(pid);
      if (alive !== false) {
        throw new Error(
          `${this.runDir} is being trained by process ${pid}${
            typeof holder.since === "string" ? ` (since ${holder.since})` : ""
          }: wait for it, or stop it${
            alive === null ? `; if that process is gone, remove ${this.path}` : ""
          } (did you mean another run folder?)`,
        );
      }
      await Deno.remove(this.path).catch(() => {}); // its holder died: take it over
    }
    throw new Error(`cannot take the lock ${this.path}: another process keeps taking it`);
  }

  /** Gives the lock back (removes the file), if this object holds it. */
  async release(): Promise<void> {
    if (!this.#held) return;
    this.#held = false;
    await Deno.remove(this.path).catch(() => {});
  }
}
