"""Progress bars: the environment decides unless the caller hides the bar."""

from repro_shared.logging import progress


def test_progress_shows_when_forced_and_hides_when_the_caller_asks(monkeypatch, capsys):
    monkeypatch.setenv("REPRO_PROGRESS", "1")
    assert list(progress(range(3), desc="shown")) == [0, 1, 2]
    assert "shown" in capsys.readouterr().err
    assert list(progress(range(3), desc="hidden", disable=True)) == [0, 1, 2]
    assert "hidden" not in capsys.readouterr().err
    monkeypatch.setenv("REPRO_PROGRESS", "0")
    assert list(progress(range(3), desc="off")) == [0, 1, 2]
    assert "off" not in capsys.readouterr().err
