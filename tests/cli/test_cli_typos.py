"""A mistyped option is reported by the command it was given to, with the option it was
probably meant to be (``--calender``: did you mean ``--calendar``?), instead of
"unrecognized arguments" and the top-level help (new-user trial)."""

from __future__ import annotations

import pytest

from tickvault.cli import main


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["backfill", "AAPL", "--calender", "XNYS"],
            "unknown option --calender (did you mean --calendar?)",
        ),
        (
            ["backfill", "AAPL", "--strat=2024-01-01"],
            "unknown option --strat (did you mean --start?)",
        ),
        (
            ["freshness", "--frehs-days", "3"],
            "unknown option --frehs-days (did you mean --fresh-days?)",
        ),
        (["vacuum", "--zzz"], "unknown option --zzz (see"),
        # an abbreviation is no option: --tickers was taken for --tickers-file AAPL
        (
            ["update", "--tickers", "AAPL"],
            "unknown option --tickers (tickers are arguments: `tickvault update AAPL MSFT`)",
        ),
        (["query", "--ticker", "AAPL"], "tickers are arguments: `tickvault query AAPL MSFT`"),
        (["backfill", "AAPL", "--sta", "2024-01-01"], "unknown option --sta (did you mean"),
    ],
)
def test_a_typo_names_the_command_and_the_closest_option(argv, expected, capsys, tmp_path):
    with pytest.raises(SystemExit) as info:
        main([*argv, "--db", str(tmp_path / "db")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    command = argv[0]
    assert err.startswith(f"tickvault {command}: error: ") and expected in err, err
    assert f"see `tickvault {command} --help`" in err and "unexpected argument" not in err
    assert not (tmp_path / "db").exists()  # nothing was created
