"""Execute Jupyter notebooks headless with the Deno kernel (driven by tasks/notebooks.ts).

Run with Debian's /usr/bin/python3 (python3-nbclient, python3-nbformat, jupyter-nbconvert):

    nbrun.py --out DIR [--timeout S] [--grace S] [--kernel NAME] [--no-html] NOTEBOOK...

A cell's metadata {"rtdlab": {"timeout": S}} overrides --timeout for that cell.

Stock nbclient stops reading a cell's iopub messages at the kernel's "idle" status. The Deno kernel
sometimes publishes a cell's last outputs (Deno.jupyter.display) *after* its idle status, so stock
nbclient drops them. GraceClient keeps reading iopub for a quiet period (`--grace`) after idle, and
routes any message to the cell whose execute request it answers (by parent msg_id), so a late output
that arrives while the next cell runs still lands in its own cell. An iopub message that fails
jupyter_client's signature check (rare: seen with the 5 MB first-figure message on a loaded machine)
is skipped and counted, and the notebook is run once more in a fresh kernel.

Writes DIR/NAME.ipynb (executed, also when a cell fails: the error is in it), DIR/NAME.html, and
DIR/NAME.kernel.log (the kernel process's own stdout/stderr; its tail is printed on failure).
Prints one line per notebook; exit status 0 when every notebook ran clean, 1 otherwise.
"""

import argparse
import asyncio
import math
import os
import re
import sys
import time
import traceback
from queue import Empty

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionComplete, CellExecutionError, CellTimeoutError, DeadKernelError
from nbclient.util import ensure_async

ANSI = re.compile(r"\x1b\[[0-9;]*m")
OUTPUT_TYPES = ("display_data", "execute_result", "stream", "error")


class GraceClient(NotebookClient):
    """NotebookClient that keeps collecting a cell's outputs for `grace` seconds of quiet after idle."""

    def __init__(self, nb, grace=0.5, **kw):
        super().__init__(nb, **kw)
        self.grace = grace
        self.cells_by_msg = {}  # execute-request msg_id -> (cell, cell_index)
        self.current_cell_index = None
        self.late_outputs = 0  # outputs that arrived after their cell's idle status
        self.unreadable_messages = 0  # iopub messages that failed the signature check
        self.poll_task = None

    async def _next_iopub(self, timeout):
        """The next iopub message, skipping (and counting) those that fail jupyter_client's signature check."""
        while True:
            try:
                return await ensure_async(self.kc.iopub_channel.get_msg(timeout=timeout))
            except ValueError:  # "Invalid Signature": garbled, or another kernel's after a port clash
                self.unreadable_messages += 1

    def _route(self, msg, parent_msg_id, idle_seen):
        """Processes one iopub message; returns True when it is the idle status of parent_msg_id."""
        pid = msg.get("parent_header", {}).get("msg_id")
        target = self.cells_by_msg.get(pid)
        if target is None:
            return False
        cell, index = target
        if (pid != parent_msg_id or idle_seen) and msg["msg_type"] in OUTPUT_TYPES:
            self.late_outputs += 1
        try:
            self.process_message(msg, cell, index)
        except CellExecutionComplete:
            return pid == parent_msg_id
        return False

    def _get_timeout(self, cell):
        """A cell's metadata `rtdlab.timeout` (seconds) overrides --timeout, e.g. for a long training cell."""
        own = (cell.metadata.get("rtdlab") or {}).get("timeout") if cell is not None else None
        if isinstance(own, (int, float)) and not isinstance(own, bool) and own > 0:
            return int(math.ceil(own))
        return super()._get_timeout(cell)

    async def async_execute_cell(self, cell, cell_index, *args, **kw):
        try:
            return await super().async_execute_cell(cell, cell_index, *args, **kw)
        except CellTimeoutError:
            # nbclient leaves the output poller running after a timeout; stop it before the loop closes.
            if self.poll_task is not None:
                self.poll_task.cancel()
            raise

    async def _async_poll_output_msg(self, parent_msg_id, cell, cell_index):
        assert self.kc is not None
        self.poll_task = asyncio.current_task()
        self.cells_by_msg[parent_msg_id] = (cell, cell_index)
        self.current_cell_index = cell_index
        # Until idle: block like nbclient does (the shell reply / timeout logic runs beside this task).
        while True:
            if self._route(await self._next_iopub(None), parent_msg_id, False):
                break
        # After idle: keep reading until `grace` seconds pass without a message for a known cell.
        deadline = time.monotonic() + self.grace
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                msg = await self._next_iopub(left)
            except Empty:
                return
            if msg.get("parent_header", {}).get("msg_id") in self.cells_by_msg:
                self._route(msg, parent_msg_id, True)
                deadline = time.monotonic() + self.grace


def describe_cell(nb, index):
    """'cell 2/5 (id abc): first line of source' (1-based, counting every cell)."""
    if index is None:
        return "before the first cell"
    cell = nb.cells[index]
    first = next((line.strip() for line in cell.source.splitlines() if line.strip()), "")
    cid = f" (id {cell.get('id')})" if cell.get("id") else ""
    return f"cell {index + 1}/{len(nb.cells)}{cid}: {first[:80]!r}"


def execute_once(path, args, log):
    """Runs one notebook in a fresh kernel: (executed nb, client, failure or None, infrastructure error?).
    The kernel's own stdout/stderr go to the file `log`."""
    nb = nbformat.read(path, as_version=4)
    client = GraceClient(
        nb,
        grace=args.grace,
        timeout=max(1, math.ceil(args.timeout)),
        kernel_name=args.kernel,
        # The grace period runs inside the iopub wait that follows the shell reply.
        iopub_timeout=max(4, int(args.grace * 4) + 4),
        allow_errors=False,
        record_timing=True,
        resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}},
    )
    try:
        client.execute(stdout=log, stderr=log)
        if client.unreadable_messages:
            # Seen about once in ten runs on a loaded machine, with the 5 MB message of a notebook's first
            # figure: the message is unreadable, so its output is missing. A fresh kernel usually gets it.
            return nb, client, (
                f"{client.unreadable_messages} iopub message(s) failed the signature check, so outputs may be missing"
            ), True
        return nb, client, None, False
    except CellTimeoutError:
        i = client.current_cell_index
        limit = client._get_timeout(nb.cells[i]) if i is not None else args.timeout
        return nb, client, f"{describe_cell(nb, i)} timed out after {limit:g} s (a timeout stops the kernel and the notebook)", False
    except CellExecutionError as e:
        detail = f"{e.ename}: {e.evalue}" if getattr(e, "ename", None) else str(e).strip().splitlines()[-1]
        return nb, client, f"{describe_cell(nb, client.current_cell_index)} failed: {ANSI.sub('', detail)}", False
    except DeadKernelError as e:
        return nb, client, f"the kernel died in {describe_cell(nb, client.current_cell_index)}: {e}", False
    except Exception as e:  # kernel start failures, channel errors: worth one more try
        if args.verbose:
            traceback.print_exc()
        return nb, client, f"{type(e).__name__}: {e}", True


def run_notebook(path, args):
    name = os.path.splitext(os.path.basename(path))[0]
    os.makedirs(args.out, exist_ok=True)
    log_path = os.path.join(args.out, name + ".kernel.log")
    t0 = time.monotonic()
    with open(log_path, "w", encoding="utf-8") as log:
        nb, client, failure, infra = execute_once(path, args, log)
        if infra:
            print(f"       {path}: {failure}; retrying once in a fresh kernel", flush=True)
            nb, client, failure, infra = execute_once(path, args, log)
            if infra and client.unreadable_messages and failure:
                # Again: keep this run, but say so (it is not a failure of the notebook's code).
                print(f"       warning: {path}: {failure}", flush=True)
                failure = None
    seconds = time.monotonic() - t0
    nb.metadata.setdefault("rtdlab", {})["executed"] = {
        "seconds": round(seconds, 2),
        "ok": failure is None,
        "late_outputs": client.late_outputs,
        "unreadable_messages": client.unreadable_messages,
    }
    out_nb = os.path.join(args.out, name + ".ipynb")
    write_atomic(out_nb, nbformat.writes(nb))
    html_note = ""
    if not args.no_html:
        try:
            from nbconvert import HTMLExporter

            body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
            write_atomic(os.path.join(args.out, name + ".html"), body)
        except Exception as e:  # the executed .ipynb is the main product
            html_note = f" (no HTML: {type(e).__name__}: {e})"
    status = "ok" if failure is None else "FAILED"
    late = f", {client.late_outputs} late output(s) kept" if client.late_outputs else ""
    print(f"{status:6} {path} ({seconds:.1f} s{late}) -> {out_nb}{html_note}", flush=True)
    if failure:
        print(f"       {path}: {failure}", flush=True)
        print_log_tail(log_path)
    return failure is None


def print_log_tail(path, lines=15):
    """Shows the end of the kernel's own output (minus Deno's banner), which explains crashes."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = [l.rstrip() for l in f if l.strip() and "is unstable and might change" not in l]
    except OSError:
        return
    if text:
        print(f"       kernel output ({path}):", flush=True)
        for line in text[-lines:]:
            print(f"         {ANSI.sub('', line)}", flush=True)


def write_atomic(path, text):
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("notebooks", nargs="+")
    p.add_argument("--out", required=True, help="folder for the executed copies")
    p.add_argument("--timeout", type=float, default=600, help="per-cell timeout in seconds")
    p.add_argument("--grace", type=float, default=0.5, help="seconds of iopub quiet awaited after a cell's idle")
    p.add_argument("--kernel", default="deno", help="kernel spec name")
    p.add_argument("--no-html", action="store_true", help="skip the nbconvert HTML copies")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args()
    ok = True
    for path in args.notebooks:
        ok = run_notebook(path, args) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
