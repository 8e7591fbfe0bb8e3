"""``pinnace proxy`` argument checking: bad input is one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import pytest

from cli.main import main


@pytest.mark.parametrize(("argv", "message"), [
    (["proxy", "--table", "bad;name", "--cleanup"], "invalid nftables table name"),
    (["proxy", "--min-sync-interval", "-1"], "must not be negative"),
    (["proxy", "--full-resync", "0"], "must be positive"),
])
def test_bad_values_exit_1_with_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


@pytest.mark.parametrize("argv", [["proxy", "--node-ip", "300.1.1.1"], ["proxy", "--cluster-cidr", "10.0.0.0/99"]])
def test_bad_addresses_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and "not an IPv4" in capsys.readouterr().err
