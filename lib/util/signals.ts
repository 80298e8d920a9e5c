/**
 * Stopping long jobs cleanly: Ctrl-C (SIGINT) and `kill` (SIGTERM) ask a training loop to finish its step and
 * write what it has; the same signal again quits at once.
 *
 * @module
 */

import { setImmediate } from "node:timers";

/** Exit status of a process a signal stopped (the shell's 128 + signal number). */
export const SIGNAL_EXIT: Record<"SIGINT" | "SIGTERM", number> = { SIGINT: 130, SIGTERM: 143 };

/**
 * Lets signal listeners and timers run. A loop whose every await resolves at once (tfjs's data(), a
 * finished promise) never gives the event loop a turn, so Ctrl-C would go unheard until it wrote a file;
 * a training loop awaits this once per step (a few microseconds).
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Calls `stop` on the first SIGINT or SIGTERM (with the signal's name and a note of what the second does);
 * a second signal of either kind exits at once with its status. Returns the signal that stopped the job,
 * or null, through `stoppedBy()`.
 */
export function onStopSignal(
  stop: (signal: "SIGINT" | "SIGTERM") => void,
): { stoppedBy: () => "SIGINT" | "SIGTERM" | null } {
  let by: "SIGINT" | "SIGTERM" | null = null;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => {
      if (by) Deno.exit(SIGNAL_EXIT[signal]);
      by = signal;
      stop(signal);
    });
  }
  return { stoppedBy: () => by };
}
