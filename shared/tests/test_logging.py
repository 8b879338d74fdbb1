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


def test_metrics_logger_closes_a_torn_last_line_before_appending(tmp_path):
    from repro_shared.logging import MetricsLogger, read_metrics

    path = tmp_path / "metrics.jsonl"
    with MetricsLogger(path) as metrics:
        metrics.log(step=1, loss=0.5)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('{"step": 2, "lo')  # a writer killed mid-line
    with MetricsLogger(path) as metrics:
        metrics.log(step=3, loss=0.25)
    assert [(r["step"], r["loss"]) for r in read_metrics(path)] == [(1, 0.5), (3, 0.25)]
    assert path.read_text().splitlines()[1] == '{"step": 2, "lo'  # the torn line stays a line of its own
