"""The ``ferhub`` command line: ``ferhub predict|models|train|evaluate|...|app``.

Each subcommand lives in ``ferhub/commands/<name>.py`` and is imported only when it runs, so ``ferhub --help``
and each command pay only for what they use.

An error ends a command with one line on stderr (``ferhub COMMAND: what went wrong and what to do``) and one
of the exit codes below; ``--debug`` (or ``FERHUB_DEBUG=1``) adds the traceback.

====  =====================================================================================================
code  meaning
====  =====================================================================================================
0     success (``predict``: at least one input was classified)
1     an input, model, data set or file that cannot be used; the message says what to fix
2     wrong or missing arguments, or nothing to do
3     the Hugging Face Hub is needed and cannot be reached (offline mode, no network) or refused the request
4     an internal error (a bug): rerun with ``--debug`` and report the traceback
130   interrupted (Ctrl-C)
143   stopped by SIGTERM (``kill``, ``timeout --preserve-status``, ``docker stop``, Slurm's time limit): the
      same clean stop as Ctrl-C (whole output, no temporary files left), with the status a shell gives a
      process SIGTERM ends
====  =====================================================================================================

SIGTERM is taken as Ctrl-C is: a command stops at its next clean point, says so on stderr and exits 143
(128 + 15, as 130 is 128 + SIGINT's 2), so a caller tells a stop it asked for from one at the keyboard.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import Any

from ferhub.errors import NETWORK_ERRORS, is_out_of_memory, is_thread_limit

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_HUB, EXIT_BUG, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143: stopped by SIGTERM, as a shell reports it
MAX_MESSAGE = 1000  # characters of an error line; some inputs would otherwise echo megabytes

EXIT_CODES_HELP = (
    "exit codes: 0 success, 1 unusable input/model/data (the message says what to fix), 2 wrong arguments or"
    " nothing to do, 3 Hugging Face Hub unreachable or refused, 4 internal error (rerun with --debug and"
    " report it), 130 interrupted (Ctrl-C), 143 stopped by SIGTERM"
)

# subcommand -> (module, one-line help). Help strings live here so `ferhub --help` imports no command module.
COMMANDS: dict[str, tuple[str, str]] = {
    "predict": ("ferhub.commands.predict", "classify the expression of every face in images"),
    "models": ("ferhub.commands.models", "list bundled models and registered architectures"),
    "train": ("ferhub.commands.train", "train a FER model from a recipe and write its model repo"),
    "push": ("ferhub.commands.push", "upload a model repo folder to the Hugging Face Hub in one commit"),
    "evaluate": (
        "ferhub.commands.evaluate",
        "evaluate models on labelled data; results into eval_results.json",
    ),
    "report": ("ferhub.commands.report", "write a standalone HTML report from eval_results.json files"),
    "compare": ("ferhub.commands.compare", "compare models: agreement, Cohen's kappa, McNemar's exact test"),
    "export": (
        "ferhub.commands.export",
        "write a model repo with model.onnx (ONNX Runtime, TensorRT, browser), checked against PyTorch",
    ),
    "zoo": (
        "ferhub.commands.zoo",
        "list, import and push the pretrained models converted from registry packages",
    ),
    "app": ("ferhub.commands.app", "serve the web app (as `python app.py` in a checkout) on 127.0.0.1:7860"),
}

# the network errors, and the Hub answering with an error (auth, missing repo, rate limit)
_HUB_ERRORS = NETWORK_ERRORS | {"HfHubHTTPError"}
_USER_ERRORS = (ValueError, OSError, MemoryError)


class _CommandParser(argparse.ArgumentParser):
    """A command's parser: options may come between its paths (``ferhub predict a.jpg --format csv b.jpg``),
    and an unknown option is refused with the command's usage, not ``ferhub``'s.

    Plain argparse stops a ``nargs="+"`` positional at the first option, then refuses the paths after it as
    ``unrecognized arguments`` under the top-level usage.
    """

    _inner = False  # set while parse_known_intermixed_args calls back into parse_known_args

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        if self._inner:
            return super().parse_known_args(args, namespace)
        if self._subparsers is not None or "--" in (args or ()):
            # a parser with subcommands of its own (``zoo``) cannot be parsed intermixed (argparse's
            # TypeError; its subcommands' parsers are of this class and are); and the intermixed parse of
            # Python <= 3.13.0 drops ``--``, refusing ``-- -a.jpg``: options come before ``--``, paths after
            namespace, extras = super().parse_known_args(args, namespace)
        else:
            self._inner = True
            try:
                namespace, extras = self.parse_known_intermixed_args(args, namespace)
            finally:
                self._inner = False
        if extras:  # here, not bubbled up to ``ferhub``'s parser, whose usage would not help
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace, extras


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    from ferhub import __version__

    parser = argparse.ArgumentParser(
        prog="ferhub", description="Facial-expression-recognition workbench.", epilog=EXIT_CODES_HELP
    )
    parser.add_argument("--version", action="version", version=f"ferhub {__version__}")
    parser.add_argument("--debug", action="store_true", help="on an error, also print the full traceback")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_CommandParser)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=EXIT_CODES_HELP)
        # also accepted after the command; SUPPRESS keeps a top-level --debug from being reset to False
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        if name == chosen:  # only the command that runs is imported
            importlib.import_module(module).add_arguments(p)
    return parser


def _names(e: BaseException) -> set[str]:
    return {c.__name__ for c in type(e).__mro__}


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_MESSAGE else line[: MAX_MESSAGE - 3] + "..."


def describe(e: BaseException) -> tuple[int, str]:
    """The exit code and the one-line message for an error that ended a command."""
    names = _names(e)
    text = _one_line(str(e)) or type(e).__name__
    if "OfflineModeIsEnabled" in names:
        return EXIT_HUB, (
            f"this needs the Hugging Face Hub but offline mode is on (HF_HUB_OFFLINE=1): {text}. Fix: unset "
            "HF_HUB_OFFLINE and run it again with network access"
        )
    if "HfHubHTTPError" in names:
        from ferhub.hub._remote import hub_failed, summary

        if hub_failed(e):  # the Hub's own failure (5xx, 429): no login or id of the user's will help
            return EXIT_HUB, f"the Hugging Face Hub failed ({summary(e)}). Fix: try again later"
        return (
            EXIT_HUB,
            (
                f"the Hugging Face Hub refused the request: {text}. Fix: check the repo id; for a private"
                " repo or an upload, log in with `hf auth login` (or set HF_TOKEN) with access to it"
            ),
        )
    if names & _HUB_ERRORS:
        if "HubConnectionError" in names:
            return EXIT_HUB, text
        return (
            EXIT_HUB,
            (
                f"cannot reach the Hugging Face Hub ({type(e).__name__}: {text}). Fix: check the network"
                " connection (or HTTPS_PROXY / HF_ENDPOINT) and run it again"
            ),
        )
    if is_thread_limit(e):  # memory, or a limit on processes and threads: Python does not say which
        return EXIT_ERROR, (
            f"cannot start a thread ({text}): the process or thread limit is reached (`ulimit -u`, a"
            " container's pids limit) or memory ran out. Fix: raise the limit, run fewer programs at once or"
            " free memory"
        )
    if is_out_of_memory(e):  # numpy's, torch's and ONNX Runtime's words for it too (ulimit -v, a small box)
        return EXIT_ERROR, (
            f"out of memory ({text}). Fix: use smaller inputs (fewer or smaller images, a smaller model) or "
            "free memory"
        )
    from ferhub.fileio import DISK_FULL, os_error_code

    code = os_error_code(e)  # a library's error carrying one too (safetensors' SafetensorError)
    if code in DISK_FULL:
        return EXIT_ERROR, _disk_full(code, _written(e) if isinstance(e, OSError) else "")
    if isinstance(e, OSError) and e.filename is not None and type(e).__module__ == "builtins":
        return EXIT_ERROR, f"{e.strerror or text}{_filename(e)}"
    if isinstance(e, _USER_ERRORS) or type(e).__module__.startswith("ferhub"):
        return EXIT_ERROR, text
    return (
        EXIT_BUG,
        (
            f"internal error ({type(e).__name__}: {text}). This is a bug in ferhub: rerun with --debug and"
            " report the traceback"
        ),
    )


def _filename(e: OSError) -> str:
    return f": {e.filename}" if e.filename is not None else ""


def _written(e: OSError) -> str:
    """``: PATH`` of the file a write failed on: a copy's or rename's destination (``filename2``; its source,
    ``filename``, was only read, and lies on another disk for an export of a bundled model), else
    ``filename``."""
    where = e.filename2 if e.filename2 is not None else e.filename
    return f": {where}" if where is not None else ""


def _disk_full(code: int, where: str) -> str:
    """The line for a disk that takes no more of a file (:data:`ferhub.fileio.DISK_FULL`), naming it."""
    if code == errno.EFBIG:
        return (
            f"the file is too large to write{where} (over the file-size limit, `ulimit -f`, or the largest"
            " file its disk takes). Fix: raise the limit or write to another disk and run it again"
        )
    if code == errno.EDQUOT:
        return f"the disk quota is used up{where}. Fix: free some space (or get a larger quota), run it again"
    return f"the disk is full{where}. Fix: free some space and run it again"


def _debug(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "debug", False)) or os.environ.get("FERHUB_DEBUG", "") not in ("", "0")


def debug_traceback(args: argparse.Namespace) -> None:
    """For a command that reports an error itself (its own line and exit code): under ``--debug`` (or
    ``FERHUB_DEBUG=1``) print the traceback of the error being handled, as :func:`main` does for the rest."""
    if _debug(args):
        traceback.print_exc()


_stop_signal: int | None = None  # the signal that asked the running command to stop, if any


def stop_requested(signum: int) -> None:
    """Note that signal ``signum`` (SIGINT, SIGTERM) asked the command to stop: :func:`main` exits with the
    status that signal calls for. For a command's own handler (``ferhub predict`` stops at its next photo)."""
    global _stop_signal
    if _stop_signal is None:
        _stop_signal = signum


def _terminated(signum: int, frame: FrameType | None) -> None:
    stop_requested(signum)
    if _swallows(frame):
        # Python only prints ("Exception ignored in ...") an exception raised there and goes on: the command
        # would run to its end and exit 0 as if no SIGTERM had come. Another thread sends the signal again
        # once the main thread has left those frames, and this handler then stops the command
        threading.Thread(target=_stop_later, args=(signum,), daemon=True).start()
        return
    raise KeyboardInterrupt  # the clean stop every command has for Ctrl-C: whole output, temporaries removed


def _swallows(frame: FrameType | None) -> bool:
    """Whether an exception raised in ``frame`` would be printed and dropped on its way up: it runs inside a
    ``__del__`` or the import system's module-lock weakref callback (where a SIGTERM during a lazy import
    landed)."""
    while frame is not None:
        code = frame.f_code
        if code.co_name == "__del__" or (
            code.co_name == "cb" and code.co_filename.startswith("<frozen importlib")
        ):
            return True
        frame = frame.f_back
    return False


def _stop_later(signum: int) -> None:
    """Send ``signum`` to this process once the main thread is out of the frames :func:`_swallows` names."""
    main = threading.main_thread().ident
    while _swallows(sys._current_frames().get(main)):
        time.sleep(0.001)
    os.kill(os.getpid(), signum)


@contextlib.contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM raises ``KeyboardInterrupt`` in the main thread, as Ctrl-C does, while the block runs."""
    global _stop_signal
    _stop_signal = None
    if threading.current_thread() is not threading.main_thread():  # signals only reach the main thread
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupted_code(code: int) -> int:
    """130 for Ctrl-C, 143 where SIGTERM stopped the command (the commands themselves return 130)."""
    return EXIT_TERMINATED if code == EXIT_INTERRUPTED and _stop_signal == signal.SIGTERM else code


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # the arguments read with the streams already seen to: with stderr closed, argparse put a usage error's
    # usage into stdout (the results) and dropped the error line
    with _closed_streams():
        args = build_parser(argv).parse_args(argv)
        with _sigterm_as_ctrl_c():
            return _run(args)


@contextlib.contextmanager
def _closed_streams() -> Iterator[None]:
    """Run a command started with stdout or stderr closed (``>&-``, ``2>&-``: cron, daemons, CI steps).

    A closed standard descriptor gets ``/dev/null``: otherwise the next file opened takes its number, and
    what native code (ONNX Runtime, torch) writes to stdout or stderr lands in that file, a result file
    perhaps. A closed stderr (``sys.stderr`` is ``None``) is silent: ``print(..., file=None)`` writes to
    stdout, where an error line would have joined the results. A closed stdout stays ``None``: ``print()``
    then writes nothing, so a command whose results are files (``predict --out-dir``, ``train``) exits 0
    with its log unsaid, while one whose results would go to stdout alone is refused (exit 2, before any
    work: :func:`_stdout_refused`).
    """
    for fd, flags in ((0, os.O_RDONLY), (1, os.O_WRONLY), (2, os.O_WRONLY)):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, flags)  # the lowest free number: fd itself where those below are open
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
    stderr = sys.stderr
    if stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (left open: a thread may still write to it)
    try:
        yield
    finally:
        if stderr is None:
            sys.stderr = stderr


def _stdout_refused(module: Any, args: argparse.Namespace) -> str | None:
    """Why the command cannot run with stdout closed (``>&-``): its results would go there alone, and be
    lost after all the work with exit 0. Each command module says where its results go for ``args`` in
    ``stdout_results(args)``: how to keep them (``"give --out-dir DIR or send stdout to a file"``), or
    ``None`` where they go to files; a module without it writes files only."""
    declared = getattr(module, "stdout_results", None)
    keep = declared(args) if sys.stdout is None and declared is not None else None
    return f"stdout is closed: the results have nowhere to go; {keep}" if keep else None


def _run(args: argparse.Namespace) -> int:
    module = importlib.import_module(COMMANDS[args.command][0])
    if refused := _stdout_refused(module, args):
        print(f"ferhub {args.command}: {refused}", file=sys.stderr)
        return EXIT_USAGE
    try:
        code = int(module.run(args) or 0)
        if sys.stdout is not None:  # None: started with stdout closed (_closed_streams)
            sys.stdout.flush()  # a full disk or a closed pipe on stdout is reported here, not at exit
        return _interrupted_code(code)
    except KeyboardInterrupt:
        by = " (SIGTERM)" if _stop_signal == signal.SIGTERM else ""
        print(f"ferhub {args.command}: interrupted{by}", file=sys.stderr)
        return _interrupted_code(EXIT_INTERRUPTED)
    except BrokenPipeError:  # `ferhub predict ... | head`: the reader has gone; say nothing more
        _silence_stdout()
        return EXIT_ERROR
    except Exception as e:
        code, message = describe(e)
        if _debug(args):
            traceback.print_exc()
        print(f"ferhub {args.command}: {message}", file=sys.stderr)
        return code


def _silence_stdout() -> None:
    # Python flushes stdout at exit and would raise (and print) BrokenPipeError again
    if sys.stdout is None:
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
