"""The papers' claims, as measured by each notebook's ``full`` profile, and bands that can fail.

``tests/bands/full/NAME.json`` (same format as the smoke bands, see tests/test_notebooks.py)
states what ``notebooks/NAME.ipynb`` must show when run with ``--profile full``: the claims
of its paper that reproduce here (compression at least 8x, a drop of at most 1.5 points,
T 25 -> 5, ...). A claim that does not reproduce is not a band: the notebook records it and
shows it in its verdict table.

The full runs take minutes each and are marked ``full``: ``make test-full`` runs them
(``.ci/run`` calls it after ``make test``); ``make test`` leaves them out.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from snnkit.notebook import REPO_ROOT
from snnkit.notebook.runner import discover_notebooks, run_notebook
from test_notebooks import check_bands

NOTEBOOKS = discover_notebooks(REPO_ROOT / "notebooks")
BANDS = Path(__file__).resolve().parent / "bands"
FULL_BANDS = BANDS / "full"

#: The range a recorded quantity can take, by a word in its name (first match wins).
_FRACTIONS = ("accuracy", "sparsity", "density", "utilization", "utilisation", "fraction", "stability")
_NONNEGATIVE = ("params", "seconds", "energy", "synops", "macs", "spikes", "size", "ratio", "compression",
                "timesteps", "latency", "bits", "reduction", "speedup", "count")


def quantity_range(key: str) -> tuple[float, float]:
    """The values a recorded number can take, judged from its name: fractions in [0, 1],
    counts, sizes, energies and ratios in [0, inf), anything else unbounded."""
    name = key.lower()
    if "drop" in name or "difference" in name or "gain" in name:
        return -math.inf, math.inf
    if any(w in name for w in _FRACTIONS):
        return 0.0, 1.0
    if any(w in name for w in _NONNEGATIVE):
        return 0.0, math.inf
    return -math.inf, math.inf


def band_cannot_fail(key: str, band: dict[str, Any]) -> bool:
    """True when ``band`` accepts every value its quantity can take (so it checks nothing)."""
    if "equals" in band or "len" in band:
        return False
    lo, hi = quantity_range(key)
    return band.get("min", -math.inf) <= lo and band.get("max", math.inf) >= hi


def _band_files() -> list[Path]:
    return sorted(BANDS.glob("*.json")) + sorted(FULL_BANDS.glob("*.json"))


def test_quantity_ranges_and_the_can_fail_rule():
    assert quantity_range("accuracy_by_bits.2") == (0.0, 1.0)
    assert quantity_range("energy_uj") == (0.0, math.inf)
    assert quantity_range("accuracy_drop_points") == (-math.inf, math.inf)
    assert band_cannot_fail("accuracy_by_bits.2", {"min": 0.0, "max": 1.0})
    assert band_cannot_fail("energy_uj", {"min": 0})
    assert not band_cannot_fail("accuracy_by_bits.2", {"min": 0.05, "max": 1.0})
    assert not band_cannot_fail("energy_uj", {"max": 3.0})
    assert not band_cannot_fail("layer_widths", {"len": 5})
    assert not band_cannot_fail("accuracy_drop_points", {"max": 1.5})


@pytest.mark.parametrize("path", _band_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_band_can_fail(path: Path):
    bands = json.loads(path.read_text())
    useless = [f"{key}: {band}" for key, band in bands.items()
               if not key.startswith("_") and isinstance(band, dict) and band_cannot_fail(key, band)]
    assert not useless, (f"{path}: these bands accept every value their quantity can take, so they "
                         "cannot fail; narrow them:\n" + "\n".join(useless))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_notebook_states_its_claims_as_full_bands(path: Path):
    full = FULL_BANDS / f"{path.stem}.json"
    assert full.is_file(), f"notebooks/{path.name} has no full-profile bands: add {full.relative_to(REPO_ROOT)}"
    bands = {k: v for k, v in json.loads(full.read_text()).items() if not k.startswith("_")}
    assert bands, f"{full}: states no claim"


@pytest.mark.full
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_full_profile_reproduces_the_claims(path: Path, tmp_path: Path):
    bands = json.loads((FULL_BANDS / f"{path.stem}.json").read_text())
    result = run_notebook(path, "full", tmp_path, progress=False)
    assert result.ok, f"{path.name} failed:\n{result.error}\nexecuted copy: {result.executed}"
    problems = check_bands(result.results, bands)
    assert not problems, f"{path.name}, full profile ({tmp_path}):\n" + "\n".join(problems)


# --------------------------------------------------------------------------------------
# The one verdict rule (snnkit.claims), on hand-computed cases for every verdict. With
# three values the 95% t interval is mean -/+ 4.302653 * std / sqrt(3) = mean -/+ 2.484138 * std.

from snnkit import claims as C  # noqa: E402
from snnkit.claims import Claim, decide  # noqa: E402
from snnkit.notebook import Recorder  # noqa: E402

HALF3 = 4.302653 / math.sqrt(3)
COMPRESSION = Claim.at_least("compression", paper="1", text="10-14x fewer parameters", target=10, unit="x",
                             paper_value="10-14x", quantity="compression")
BEATS = Claim.better("attention_vs_magnitude", paper="2", text="attention guidance beats magnitude pruning",
                     a="attention-guided", b="magnitude", scale=100, unit="points", quantity="SNN test accuracy")
ISO = Claim.not_worse("ternary_iso", paper="3", text="ternary weights within 1 point of full precision",
                      a="ternary", b="full precision", margin=1.0, scale=100, unit="points",
                      ceiling=C.accuracy_ceiling(359))


def test_quantity_claims_hand_computed():
    yes = decide(COMPRESSION, [11.0, 11.5, 12.0])  # 11.5 -/+ 0.5 * HALF3 = [10.258, 12.742]
    assert yes.outcome == C.REPRODUCED and yes.label == "reproduced"
    assert (yes.interval.low, yes.interval.high) == pytest.approx((11.5 - 0.5 * HALF3, 11.5 + 0.5 * HALF3))
    assert yes.reason == "the whole interval is at or above 10x"
    no = decide(COMPRESSION, [5.0, 6.0, 5.5])  # [4.258, 6.742]: below 10
    assert no.outcome == C.NOT_REPRODUCED and no.reason == "the whole interval is below 10x"
    maybe = decide(COMPRESSION, [8.0, 10.0, 12.0])  # [5.03, 14.97] holds 10
    assert maybe.outcome == C.INCONCLUSIVE and maybe.reason == "the interval holds 10x"
    one = decide(COMPRESSION, [9.6])
    assert one.outcome == C.INCONCLUSIVE and one.label == "inconclusive (one run)"
    assert one.row() == {"paper": "1", "claim": "10-14x fewer parameters", "paper's number": "10-14x",
                         "here (mean)": "9.60x", "95% interval": "one run, no interval", "seeds": "1",
                         "verdict": "inconclusive (one run)"}
    # the KL rule's picks of 6, 5, 6 of 10 steps against "at most 0.6": mean 0.567, upper end 0.710
    kl = decide(Claim.at_most("kl", paper="5", text="t <= 0.6 T", target=0.6), [0.6, 0.5, 0.6])
    assert kl.outcome == C.INCONCLUSIVE and kl.interval.high == pytest.approx(0.5667 + 0.057735 * HALF3, abs=1e-4)
    assert decide(Claim.at_most("kl", paper="5", text="t", target=0.6), [0.5, 0.5]).outcome == C.REPRODUCED


def test_the_decided_sample():
    assert BEATS.sample([0.9, 0.8], [0.85, 0.8]) == pytest.approx([5.0, 0.0])
    assert BEATS.pairs({0: 0.9, 1: 0.8}, {1: 0.7}) == [(0.8, 0.7)]  # seed 1 only
    assert COMPRESSION.sample({3: 9.0, 4: None, 5: 11.0}) == [9.0, 11.0]
    assert Claim.at_most("d", paper="1", text="t", target=1, scale=100).sample([0.012]) == pytest.approx([1.2])


def test_exact_claims_are_decided_by_one_value():
    t_lowered = Claim.at_least("t", paper="1", text="T lowered 4x", target=4, unit="x", exact=True)
    assert decide(t_lowered, [5.0]).outcome == C.REPRODUCED
    assert decide(t_lowered, [3.0]).outcome == C.NOT_REPRODUCED
    assert decide(t_lowered, [5.0]).interval_text == "exact (set by the protocol)"
    assert decide(t_lowered, [4.0]).outcome == C.REPRODUCED  # at least: reaching it is enough


def test_paired_claims_hand_computed():
    # differences 2, 3, 4 points: [3 - 2.484, 3 + 2.484] = [0.516, 5.484], above 0
    v = decide(BEATS, [0.90, 0.92, 0.94], baseline=[0.88, 0.89, 0.90], seeds=[0, 100, 200])
    assert v.outcome == C.REPRODUCED and v.interval.mean == pytest.approx(3.0)
    assert v.here == "+3.00 points (attention-guided 0.920, magnitude 0.890)"
    assert v.interval_text == "+0.52 to +5.48"
    tie = decide(BEATS, [0.9, 0.8], baseline=[0.9, 0.8])  # "better" is strict: a tie is not better
    assert tie.outcome == C.NOT_REPRODUCED and tie.reason == "every value is at or below +0 points"
    spans = decide(BEATS, [0.90, 0.88, 0.94], baseline=[0.89, 0.89, 0.90])  # differences 1, -1, 4
    assert spans.outcome == C.INCONCLUSIVE
    # a shared reference measured once: differences against it
    shared = decide(BEATS, [0.90, 0.91, 0.92], baseline=0.95)
    assert shared.outcome == C.NOT_REPRODUCED and shared.interval.mean == pytest.approx(-4.0)
    # not worse by 1 point: differences -0.5, -0.3, -0.4 -> [-0.648, -0.152], above -1
    iso = decide(ISO, [0.975, 0.977, 0.976], baseline=[0.98, 0.98, 0.98])
    assert iso.outcome == C.REPRODUCED and ISO.threshold == -1.0
    worse = decide(ISO, [0.95, 0.96, 0.955], baseline=[0.98, 0.98, 0.98])  # -3, -2, -2.5 points
    assert worse.outcome == C.NOT_REPRODUCED
    # lower is better (energy): -1, -0.9, -1.1 uJ -> [-1.248, -0.752], below 0
    cheaper = Claim.better("energy", paper="3", text="A needs less energy", a="A", b="B", unit="uJ",
                           higher_is_better=False)
    assert cheaper.threshold_text == "+0 uJ" and ISO.threshold_text == "-1 points"
    assert decide(cheaper, [1.0, 1.1, 0.9], baseline=[2.0, 2.0, 2.0]).outcome == C.REPRODUCED
    assert decide(cheaper, [3.0, 3.1, 2.9], baseline=[2.0, 2.0, 2.0]).outcome == C.NOT_REPRODUCED
    within = Claim.not_worse("e", paper="3", text="t", a="A", b="B", margin=0.5, higher_is_better=False)
    assert within.threshold == 0.5 and decide(within, [2.2, 2.3, 2.1], baseline=2.0).outcome == C.REPRODUCED


def test_not_testable_here():
    # the reference (default: B) at the data's ceiling: iso-accuracy cannot be told from saturation
    sat = decide(ISO, [1.0, 1.0, 1.0], baseline=[1.0, 1.0, 1.0])
    assert sat.outcome == C.NOT_TESTABLE
    assert sat.label == ("not testable here: full precision at the data's ceiling: mean accuracy 1.000 >= 0.990")
    assert decide(ISO, [0.98, 0.985], baseline=[0.985, 0.99]).outcome == C.REPRODUCED  # B 0.9875 < 0.99; -0.5, -0.5
    drop = Claim.at_most("drop", paper="1", text="at most 1.5 points lost", target=1.5, unit="points",
                         ceiling=0.99)
    assert decide(drop, [1.1], reference=[0.9972]).outcome == C.NOT_TESTABLE
    assert decide(drop, [1.1], reference=[0.97]).label == "inconclusive (one run)"
    gone = decide(COMPRESSION, None, untestable="5 bits were not in quant_bits")
    assert gone.outcome == C.NOT_TESTABLE and gone.label == "not testable here: 5 bits were not in quant_bits"
    assert gone.here == "not measured"
    assert C.accuracy_ceiling(359) == 0.99 and C.accuracy_ceiling(50) == pytest.approx(0.98)
    assert C.accuracy_ceiling() == 0.99


def test_pooled_runs_and_records():
    runs = [C.Evidence.of([0.90], [0.88], seeds=[0]), C.Evidence.of([0.92], [0.89], seeds=[1]),
            C.Evidence.of([0.94], [0.90], seeds=[2])]
    pooled = C.decide_pooled(BEATS, runs)  # the same differences 2, 3, 4 as above, one per run
    assert pooled.outcome == C.REPRODUCED and pooled.seeds == 3
    skipped = C.decide_pooled(COMPRESSION, [C.Evidence.of([11.0]), C.Evidence.of([12.0]),
                                            C.Evidence.of(None, untestable="no PCA")])
    assert skipped.seeds == 2 and skipped.reason.endswith("(1 run(s) could not measure it: no PCA)")
    record = decide(BEATS, {0: 0.90, 1: 0.92, 2: 0.94, 3: 0.5}, baseline={0: 0.88, 1: 0.89, 2: 0.90}).to_dict()
    assert record["seeds"] == [0, 1, 2] and record["values"] == [0.90, 0.92, 0.94]
    assert record["verdict"] == "reproduced" and record["n"] == 3
    assert json.loads(json.dumps(record)) == record  # plain JSON
    again = C.verdict_from_record(record)
    assert again.outcome == C.REPRODUCED and again.interval.mean == pytest.approx(3.0)
    assert C.Claim.from_dict(BEATS.to_dict()) == BEATS
    one = decide(COMPRESSION, [9.6]).to_dict()
    assert one["low"] is None and one["mean"] == 9.6  # no NaN in results.json


@pytest.mark.parametrize("make, message", [
    (lambda: Claim("a.b", "1", "t", C.AT_LEAST), r"key='a.b': expected a non-empty name without '.'"),
    (lambda: Claim("k", "1", "t", "above"), r"direction='above': expected one of at least, at most"),
    (lambda: Claim.better("k", paper="1", text="t", a="A", b="B", margin=-1), r"margin=-1: expected a margin >= 0"),
    (lambda: Claim("k", "1", "t", C.BETTER), r"a 'better' claim names both sides"),
    (lambda: Claim.at_least("k", paper="1", text="t", target=1, scale=0), r"scale=0: expected a number > 0"),
    (lambda: Claim.at_least("k", paper="1", text="t", target=1, ceiling=1.5), r"ceiling=1.5: expected an accuracy"),
    (lambda: decide(COMPRESSION, []), r"no values to decide it from"),
    (lambda: decide(BEATS, [0.9]), r"give the per-seed values of magnitude as baseline="),
    (lambda: decide(COMPRESSION, [9.0], baseline=[1.0]), r"is about one quantity .* takes no baseline"),
    (lambda: decide(Claim.at_most("d", paper="1", text="t", target=1, ceiling=0.99), [0.5]),
     r"declares the ceiling 0.99: give the reference"),
    (lambda: decide(COMPRESSION, [9.0, 10.0], seeds=[0]), r"1 seed\(s\) for 2 value\(s\)"),
    (lambda: C.accuracy_ceiling(0), r"test_size=0: expected the number of test samples"),
    (lambda: C.Claim.from_dict({**BEATS.to_dict(), "colour": "red"}), r"unknown field\(s\) \['colour'\]"),
])
def test_declaration_and_decision_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_claims_table_shows_every_character():
    long = "x" * 300 + " | end"
    v = decide(Claim.at_least("k", paper="1", text=long, target=1), [2.0, 2.0])
    shown = C.claims_table([v])
    assert long.replace("|", "\\|") in shown.to_markdown() and "..." not in shown.to_markdown()
    assert "x" * 300 + " | end" in shown._repr_html_() and "<td style='text-align:left'>reproduced</td>" in \
        shown._repr_html_()
    assert repr(shown) == shown.to_markdown() and len(shown) == 1
    assert list(shown.to_frame().columns) == list(C.COLUMNS)
    assert C.claims_table([v], columns=["claim", "verdict"]).to_markdown().splitlines()[0] == "| claim | verdict |"
    assert str(v) == f"{long}: 2.00, 2.00-2.00; reproduced (every value is at or above 1)"


def test_recorder_claim_writes_results_json(tmp_path):
    rec = Recorder(tmp_path)
    v = rec.claim(BEATS, [0.90, 0.92, 0.94], baseline=[0.88, 0.89, 0.90], seeds=[0, 100, 200])
    assert v.outcome == C.REPRODUCED
    stored = json.loads((tmp_path / "results.json").read_text())["claims"]["attention_vs_magnitude"]
    assert stored["verdict"] == "reproduced" and stored["seeds"] == [0, 100, 200]
    assert stored["claim"]["a"] == "attention-guided" and stored["mean"] == pytest.approx(3.0)
    rec.claim(BEATS, [0.9], baseline=[0.8])  # a cell run again replaces its claims
    stored = json.loads((tmp_path / "results.json").read_text())["claims"]
    assert list(stored) == ["attention_vs_magnitude"] and stored["attention_vs_magnitude"]["values"] == [0.9]
    with pytest.raises(ValueError, match=r"record name 'claims': kept for the claims"):
        rec.record("claims", 1)
