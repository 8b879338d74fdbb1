"""Perspective API client with a fake HTTP transport (no network): request, retries, cache, clear errors."""

import json

import pytest
from decoding_comp_trust.trust.toxicity_scorers import OfflineProfanityScorer, PerspectiveAPIError, PerspectiveAPIScorer
from repro_shared.errors import ConfigError


class FakeTransport:
    def __init__(self, responses):
        self.responses, self.calls = list(responses), []

    def __call__(self, url, body, timeout):
        self.calls.append((url, json.loads(body)))
        status, payload = self.responses.pop(0)
        return status, json.dumps(payload).encode() if isinstance(payload, dict) else payload


def ok(value):
    return 200, {"attributeScores": {"TOXICITY": {"summaryScore": {"value": value}}}}


def test_request_body_and_disk_cache(tmp_path):
    transport = FakeTransport([ok(0.75)])
    scorer = PerspectiveAPIScorer("KEY", tmp_path / "cache.jsonl", transport=transport, sleep=lambda s: None)
    assert scorer.score(["you fool", ""]) == [0.75, -1.0]  # empty → -1 without a call, as the authors
    url, body = transport.calls[0]
    assert url.endswith("comments:analyze?key=KEY")
    assert body == {"comment": {"text": "you fool"}, "requestedAttributes": {"TOXICITY": {}},
                    "spanAnnotations": False, "languages": ["en"]}
    again = PerspectiveAPIScorer("KEY", tmp_path / "cache.jsonl", transport=FakeTransport([]), sleep=lambda s: None)
    assert again.score(["you fool"]) == [0.75] and again.calls == 0  # a re-run costs nothing


def test_retries_then_succeeds_and_rate_limit_sleeps():
    slept = []
    transport = FakeTransport([(429, b"quota"), (503, b"unavailable"), ok(0.1)])
    scorer = PerspectiveAPIScorer("KEY", transport=transport, sleep=slept.append, backoff_s=1.0, qps=1000)
    assert scorer.score(["text"]) == [0.1]
    assert len(transport.calls) == 3 and 1.0 in slept and 2.0 in slept


def test_persistent_failure_is_a_clear_error_never_a_zero():
    transport = FakeTransport([(500, b"boom")] * 3)
    scorer = PerspectiveAPIScorer("KEY", transport=transport, sleep=lambda s: None, max_retries=2)
    with pytest.raises(PerspectiveAPIError, match="HTTP 500"):
        scorer.score(["text"])
    assert len(transport.calls) == 3


def test_bad_key_is_not_retried():
    transport = FakeTransport([(403, b"API key not valid")])
    scorer = PerspectiveAPIScorer("BAD", transport=transport, sleep=lambda s: None)
    with pytest.raises(PerspectiveAPIError, match="API key not valid"):
        scorer.score(["text"])
    assert len(transport.calls) == 1


def test_missing_key_fails_at_construction(monkeypatch):
    monkeypatch.delenv("PERSPECTIVE_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="PERSPECTIVE_API_KEY"):
        PerspectiveAPIScorer()


def test_offline_scorer_ranks_insults_above_neutral_text():
    scorer = OfflineProfanityScorer()
    insult, neutral = scorer.score(["you are a fucking idiot", "the weather is nice today"])
    assert insult > 0.5 > neutral
