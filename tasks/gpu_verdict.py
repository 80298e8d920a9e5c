#!/usr/bin/env python3
"""The GPU check's verdict on issue 12's bars, read from the logs `tasks/gpu_check.sh run` wrote.

    python3 tasks/gpu_verdict.py LOGS_DIR

One line per bar: every kernel and step against the cpu backend (cuda_test; NO GPU when it found no
usable GPU and skipped those cases), 200 steps without a non-finite loss, device memory and live
tensors flat after warm-up, the same bits from one seed, speed against PyTorch CUDA in the same run
(electra-small b128: 0.5x the bar, 1.0x the goal), whether the step is host- or device-bound (probe),
the kernels that take most of the device's time (profile), and what fine-tuning and DeBERTa's preset
cost. A bar whose stage wrote nothing says "not run". Python, like the check's summaries: it runs
where deno may have failed.
"""
import json
import math
import os
import re
import sys

WARMUP_STEP = 20  # the check's pretrain runs warm up for 20 steps; memory is judged after that


def read(logs, name):
    try:
        with open(os.path.join(logs, name)) as f:
            return f.read()
    except OSError:
        return None


def jsonl(logs, name):
    text = read(logs, name)
    return None if text is None else [json.loads(line) for line in text.splitlines() if line.strip()]


def stage_line(logs, stage):
    """How stages.txt says `stage` ended: ("exit", code, seconds, limit), ("skipped", why) or None."""
    for line in (read(logs, "stages.txt") or "").splitlines():
        m = re.match(rf"^stage {re.escape(stage)}: exit (\d+) in (\d+) s \(limit (\d+) s\)", line)
        if m:
            return ("exit", int(m.group(1)), int(m.group(2)), int(m.group(3)))
        m = re.match(rf"^stage {re.escape(stage)}: skipped \((.*)\)$", line)
        if m:
            return ("skipped", m.group(1))
    return None


def last_line(logs, stage):
    text = read(logs, f"{stage}.log") or ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:160] if lines else "(empty)"


def missing(logs, stage):
    """The bar of a stage that left no record: "not run" (or skipped, and why) if it wrote no log, "TIMED OUT"
    when its time limit stopped it, else FAILED with its last words."""
    ended = stage_line(logs, stage)
    if read(logs, f"{stage}.log") is None:
        return "not run", (f"skipped: {ended[1]}" if ended and ended[0] == "skipped" else "")
    if ended and ended[0] == "exit" and ended[1] in (124, 137):
        return "TIMED OUT", f"{stage} stopped at its {ended[3]} s limit; last: {last_line(logs, stage)}"
    return "FAILED", f"{stage}.log: {last_line(logs, stage)}"


def run_setting(logs, stage, key, default):
    """A setting of a pretrain stage's run, from the config.json the check copied (else `default`)."""
    try:
        return json.loads(read(logs, f"{stage}_config.json") or "{}").get(key, default)
    except ValueError:
        return default


def correctness(logs):
    text = read(logs, "cuda_test.log")
    if text is None:
        return "not run", ""
    m = None
    for m in re.finditer(r"^(ok|FAILED) \| (\d+) passed(?: \| (\d+) failed)?(?: \| (\d+) ignored)?", text, re.M):
        pass
    if not m:
        status, detail = missing(logs, "cuda_test")
        return status, f"no test summary; {detail}"
    failed, ignored = int(m.group(3) or 0), int(m.group(4) or 0)
    names = re.findall(r"^(.+?) => ", text[text.find("FAILURES"):], re.M) if failed else []
    detail = f"{m.group(2)} passed, {failed} failed, {ignored} ignored" + (f": {'; '.join(names[:3])}" if names else "")
    # Without a usable GPU (no driver, cuInit failing, no cuBLAS) the GPU cases are skipped and the rest
    # pass: that is no evidence the kernels work on a GPU, whatever the summary line says.
    no_gpu = re.search(r"^cuda_test: no usable GPU here, GPU comparisons skipped: (.*)$", text, re.M)
    if no_gpu and failed == 0:
        return "NO GPU", f"{detail}; {no_gpu.group(1)[:120]}"
    return ("ok" if m.group(1) == "ok" and failed == 0 else "FAILED"), detail


def finite(v):
    return isinstance(v, (int, float)) and math.isfinite(v)


def finite_run(logs):
    steps = run_setting(logs, "pretrain", "steps", 200)
    rows = jsonl(logs, "pretrain_metrics.jsonl")
    if not rows:
        return missing(logs, "pretrain")
    # A run stops at its first non-finite loss (lib/train/run.ts) and says so; JSON has no NaN, so a
    # metrics line from before that rule holds null where a loss was NaN (the check's runs are GDES: both
    # losses are numbers).
    diverged = [line for line in (read(logs, "pretrain.log") or "").splitlines() if "training diverged" in line]
    if diverged:
        return "FAILED", diverged[0].strip().removeprefix("error: ")[:200]
    bad = [r["step"] for r in rows if not (finite(r.get("loss_mlm")) and finite(r.get("loss_rtd")))]
    last = rows[-1]["step"]
    if bad:
        return "FAILED", f"non-finite losses at steps {bad[:5]}"
    if last < steps:
        ended = stage_line(logs, "pretrain")
        why = (f"its {ended[3]} s limit" if ended and ended[0] == "exit" and ended[1] in (124, 137)
               else "a crash or a stop: pretrain.log")
        return "SHORT", f"stopped at step {last} of {steps} ({why})"
    return "ok", f"{last} steps, every loss finite"


def flat_memory(logs):
    rows = [r for r in jsonl(logs, "pretrain_metrics.jsonl") or [] if r["step"] >= WARMUP_STEP]
    if len(rows) < 2:
        status, detail = missing(logs, "pretrain")
        return status, detail and f"under two logged steps after warm-up; {detail}"
    out = []
    status = "ok"
    for key, unit, slack in (("device_mib", "MiB on the device", 0.01), ("tensors", "live tensors", 0)):
        values = [r[key] for r in rows if r.get(key) is not None]
        if not values:
            status, _ = "FAILED", out.append(f"no {key} logged")
            continue
        base, top = values[0], max(values)
        if top > base * (1 + slack):
            status = "GROWS"
        out.append(f"{unit} {base:g} at step {rows[0]['step']}, at most {top:g} by step {rows[-1]['step']}")
    return status, "; ".join(out)


def repeat(logs):
    text = read(logs, "repeat_summary.txt")
    if text is None:
        return "not run", ""
    if "the same bits" in text:
        return "ok", text.strip().removeprefix("repeat: ")
    return "FAILED", text.strip()[:160]


def speed(logs):
    text = read(logs, "bench.json")
    if text is None:
        return missing(logs, "bench")
    record = json.loads(text)
    rows = record.get("rows", [])
    cases, status = [], "not run"
    for r in rows:
        spec, ratio = r["spec"], r.get("ratio")
        res = (r.get("rtdlab") or {}).get("result") or {}
        gpu = res.get("gpu") or {}
        label = f"{spec['config']} b{spec['batch']}"
        if ratio is None:
            cases.append(f"{label}: no ratio ({'rtdlab' if not res else 'peer'} failed)")
            continue
        cases.append(f"{label} {ratio:.2f}x ({1000 * res['median_s']:.0f} ms, {gpu.get('launches_per_step', '?')}+"
                     f"{gpu.get('gemms_per_step', '?')} launches+gemms)")
        if (spec["config"], spec["batch"]) == ("electra-small", 128):
            status = "GOAL" if ratio >= 1.0 else "ok" if ratio >= 0.5 else "BELOW"
    if status == "not run" and rows:
        status = "FAILED"  # the case the bar is about gave no ratio
    detail = "rtdlab/PyTorch tokens/s: " + "; ".join(cases)
    # A record the bench rewrote after each case but never finished: its time limit (or a crash) cut it short.
    planned = record.get("cases")
    if record.get("finished", "") is None:
        ended = stage_line(logs, "bench")
        why = f"its {ended[3]} s limit" if ended and ended[0] == "exit" and ended[1] in (124, 137) else "a crash"
        detail = f"{len(rows)} of {planned} cases measured before {why}; " + detail
        if status in ("not run", "FAILED"):
            status = "TIMED OUT" if why != "a crash" else "FAILED"
    return status, detail


def bound(logs):
    text = read(logs, "probe.log")
    if text is None:
        return missing(logs, "probe")
    start = re.search(r"^\{", text, re.M)  # the report: the JSON object probe.ts prints last
    if not start:
        return "FAILED", "no report in probe.log: " + (text.strip().splitlines() or [""])[-1][:120]
    p = json.loads(text[start.start():])
    wall, host, floor = p["step_wall_ms"], p["estimated_host_ms"], p.get("device_floor_ms")
    which = "host-bound" if host >= 0.8 * wall else "device-bound"
    detail = f"{p['config']} b{p['batch']}: wall {wall:.1f} ms, host {host:.1f} ms"
    if floor:
        detail += f", device floor {floor:.1f} ms ({p.get('device_peak')}): {wall / floor:.1f}x the floor"
    detail += f"; {p['launches_and_gemms_per_step']:.0f} launches+gemms; reserved {p['device_reserved_gb']:.1f} GB"
    return which, detail


def profile(logs, top=3):
    """Where the device's time goes (bench --profile, electra-small b128): the kernels to make faster first."""
    text = read(logs, "profile.json")
    if text is None:
        return missing(logs, "profile")
    profiles = json.loads(text).get("profiles") or []
    if not profiles:
        return "FAILED", "profile.json holds no profile"
    p = profiles[0]
    total = p.get("kernelMs") or 0
    floor = (p.get("floor") or {}).get("byKernel", {})
    ranked = sorted(p.get("byKernel", []), key=lambda k: -k["ms"])[:top]
    parts = []
    for k in ranked:
        share = f" {100 * k['ms'] / total:.0f}%" if total else ""
        over = f", {k['ms'] / floor[k['name']]:.1f}x its floor" if floor.get(k["name"]) else ""
        parts.append(f"{k['name']} {k['ms']:.1f} ms{share}{over}")
    head = f"{p['config']} b{p['batch']}: kernels {total:.1f} of {p['stepMs']:.1f} ms/step"
    return "info", head + ("; top: " + "; ".join(parts) if parts else "")


def cost(logs):
    parts, failed, timed_out = [], [], False
    ft = re.search(r"^finetune: (\d+ steps, \d+ ms/step training)", read(logs, "finetune_summary.txt") or "", re.M)
    if ft:
        parts.append(f"fine-tuning {ft.group(1)}")
    elif missing(logs, "finetune")[0] in ("FAILED", "TIMED OUT"):
        timed_out |= missing(logs, "finetune")[0] == "TIMED OUT"
        failed.append(missing(logs, "finetune")[1])
    rows = jsonl(logs, "deberta_metrics.jsonl")
    late = sorted(r["tokens_per_s"] for r in (rows or [])[len(rows or []) // 2:] if r.get("tokens_per_s"))
    if late:
        batch = run_setting(logs, "deberta", "batchSize", 128)
        parts.append(f"deberta-v3-xsmall GDES b{batch}: {late[len(late) // 2]} tokens/s, "
                     f"{rows[-1].get('device_mib')} MiB (to step {rows[-1]['step']})")
    elif missing(logs, "deberta")[0] in ("FAILED", "TIMED OUT"):
        timed_out |= missing(logs, "deberta")[0] == "TIMED OUT"
        failed.append(missing(logs, "deberta")[1])
    status = ("TIMED OUT" if timed_out else "FAILED") if failed else "info" if parts else "not run"
    return status, "; ".join(parts + failed)


BARS = (
    ("correctness", correctness),
    ("no NaN", finite_run),
    ("memory flat", flat_memory),
    ("same seed", repeat),
    ("speed", speed),
    ("bound", bound),
    ("profile", profile),
    ("cost", cost),
)


def main():
    if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
        sys.exit("usage: python3 tasks/gpu_verdict.py LOGS_DIR (the folder tasks/gpu_check.sh run logged to)")
    print("== verdict (issue 12's bars; electra-small b128 speed: 0.5x PyTorch the bar, 1.0x the goal)")
    for name, bar in BARS:
        try:
            status, detail = bar(sys.argv[1])
        except (ValueError, KeyError, TypeError) as e:
            status, detail = "FAILED", f"unreadable log ({type(e).__name__}: {e})"
        print(f"{name:12s} {status:12s} {detail}".rstrip())


if __name__ == "__main__":
    main()
