"""The `lms` group: help, version, exit codes, one-line errors, lazy imports."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
from cli_fakes import Invoke

from openlms import __version__
from openlms.cli.app import CliApp
from openlms.cli.main import main

SUBCOMMANDS = [
    "status",
    "server",
    "ls",
    "get",
    "ps",
    "load",
    "chat",
    "unload",
    "import",
    "log",
    "token",
    "mcp",
    "link",
    "app",
    "daemon",
    "version",
]


def test_bare_lms_lists_the_subcommands(invoke: Invoke) -> None:
    result = invoke([])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == f"lms - openlms CLI - v{__version__}"
    assert [line.split(" - ")[0][2:] for line in lines if line.startswith("- ")] == SUBCOMMANDS
    assert "- ls - List all downloaded models" in lines
    assert lines[-1] == "For more help, try running `lms <subcommand> --help`"
    assert invoke(["--help"]).stdout == result.stdout
    assert invoke(["-h"]).stdout == result.stdout


def test_group_without_subcommand_prints_its_help(invoke: Invoke) -> None:
    result = invoke(["server"])
    assert result.exit_code == 0
    assert "start" in result.stdout and "stop" in result.stdout and "status" in result.stdout


def test_version(invoke: Invoke) -> None:
    assert invoke(["version"]).stdout == f"openlms {__version__}\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["frobnicate"], "Error: No such command 'frobnicate'.\n"),
        (["ls", "--bogus"], "Error: No such option '--bogus'. Did you mean '--host'?\n"),
        (
            ["server", "start", "--port", "0"],
            "Error: Invalid value for '--port': 0 is not in the range 1<=x<=65535.\n",
        ),
    ],
)
def test_usage_errors_are_one_line_with_exit_code_2(invoke: Invoke, args: list[str], message: str) -> None:
    result = invoke(args)
    assert (result.exit_code, result.stderr) == (2, message)


def test_main_returns_the_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert main(["frobnicate"]) == 2
    assert capsys.readouterr().err == "Error: No such command 'frobnicate'.\n"


def test_runtime_errors_exit_1_without_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    assert main(["ls", "--host", "127.0.0.1:9"], app=CliApp(transport=httpx.MockTransport(refuse))) == 1
    assert capsys.readouterr().err == (
        "Error: cannot reach the openlms server at http://127.0.0.1:9 (connection refused). "
        "Is the server running there, and reachable from this machine?\n"
    )


def test_bugs_are_reported_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    def crash(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("kaput\nsecond line")

    assert main(["ps", "--host", "h"], app=CliApp(transport=httpx.MockTransport(crash))) == 1
    assert capsys.readouterr().err == (
        "Error: unexpected RuntimeError: kaput second line (set OPENLMS_DEBUG=1 to see the traceback)\n"
    )


def test_help_imports_no_heavy_modules() -> None:
    code = (
        "import sys\n"
        "from openlms.cli.main import main\n"
        "for args in (['--help'], ['version'], ['ls', '--help'], ['server', 'status']):\n"
        "    assert main(args) == 0\n"
        "heavy = sorted(m for m in ('httpx', 'rich', 'pydantic', 'pydantic_settings') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines()[-1] == ""
