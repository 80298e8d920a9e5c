/**
 * What a benchmark ran on: CPU model, cores, load, memory, and the versions of Deno, tfjs and torch.
 * Recorded with every result, because absolute times on shared machines drift.
 *
 * @module
 */

import * as tf from "../tf.ts";

/** Machine and software facts for a benchmark record. */
export interface MachineInfo {
  cpu_model: string;
  nproc: number;
  loadavg: number[];
  mem_total_mib: number | null;
  os: string;
  hostname: string;
  deno: string;
  v8: string;
  typescript: string;
  tfjs: string;
  torch: string | null;
  /** The OpenBLAS variables the machine sets (the peer's command unsets them: they slow a current OpenBLAS). */
  openblas_env: Record<string, string>;
}

/** Reads /proc/cpuinfo's first "model name" (null elsewhere). */
export function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(Deno.readTextFileSync("/proc/cpuinfo"));
    if (m) return m[1].trim();
  } catch { /* not Linux */ }
  return "unknown";
}

function memTotalMiB(): number | null {
  try {
    const m = /MemTotal:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/meminfo"));
    return m ? Math.round(Number(m[1]) / 1024) : null;
  } catch {
    return null;
  }
}

/** Collects {@link MachineInfo}; `torch` is passed in (asking python costs a second). */
export function machineInfo(torch: string | null): MachineInfo {
  const openblas: Record<string, string> = {};
  for (const k of ["OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"]) {
    const v = Deno.env.get(k);
    if (v !== undefined) openblas[k] = v;
  }
  return {
    cpu_model: cpuModel(),
    nproc: navigator.hardwareConcurrency,
    loadavg: Deno.loadavg().map((x) => Math.round(x * 100) / 100),
    mem_total_mib: memTotalMiB(),
    os: `${Deno.build.os} ${Deno.osRelease()} ${Deno.build.arch}`,
    hostname: Deno.hostname(),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    tfjs: tf.version_core,
    torch,
    openblas_env: openblas,
  };
}
