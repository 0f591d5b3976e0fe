"""Review: comparisons of label sources, the page and the study report on the demo data."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from sgus_core import imaging, metrics
from sgus_core.demo import ensure_demo
from sgus_core.review.comparisons import (
    REFERENCE_LINES,
    Source,
    available_sources,
    compare,
    rater_matrix,
    summarize,
)
from sgus_core.review.figures import iou_histogram
from sgus_core.review.report import build_report
from sgus_core.settings import REPO_ROOT, load_settings
from sgus_core.store import LabelStore

APP = str(REPO_ROOT / "streamlit_app.py")


@pytest.fixture
def demo(tmp_path, monkeypatch):
    """A two-patient demo with its reference and two simulated raters."""
    monkeypatch.setenv("SGUS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SGUS_DB_URL", f"sqlite:///{tmp_path / 'sgus.db'}")
    settings = load_settings()
    store = LabelStore(settings.db_url)
    ensure_demo(store, settings, n_patients=2)
    yield store, store.require_dataset("demo")
    store.close()


def test_sources_include_raters_and_consensus(demo):
    """The demo offers the reference, both simulated raters and their consensus."""
    store, ds = demo
    labels = [s.label for s in available_sources(store, ds.id)]
    assert "rater reference" in labels and "rater simulated-rater-A" in labels
    assert "consensus of reference, simulated-rater-A, simulated-rater-B" in labels


def test_a_rater_is_compared_with_the_consensus_of_the_others(demo):
    """Rater A against the consensus: the report names the consensus of the two others, and
    its grades are theirs (A is not part of what she is compared with)."""
    store, ds = demo
    consensus = next(s for s in available_sources(store, ds.id) if s.kind == "consensus")
    result = compare(store, ds.id, Source("rater", "simulated-rater-A"), consensus)
    assert result.b.label == "consensus of reference, simulated-rater-B"
    alone = compare(store, ds.id, Source("rater", "simulated-rater-A"),
                    Source("consensus", members=("reference", "simulated-rater-B")))  # fmt: skip
    assert result.per_image["grade_b"].tolist() == alone.per_image["grade_b"].tolist()


def test_rounds_are_named_by_their_name(demo):
    """A rater's labels of a round appear as "<rater> in <round name>"."""
    store, ds = demo
    images = [i.id for i in store.list_images(ds.id)]
    store.create_round("baseline reading", ds.id, images, ["reference"])
    labels = [s.label for s in available_sources(store, ds.id)]
    assert "reference in baseline reading" in labels


def test_comparison_matches_the_metrics_core_per_image(demo):
    """Per-image IoU equals the metrics core on the decoded masks; kappa equals cohen_kappa."""
    store, ds = demo
    result = compare(
        store, ds.id, Source("rater", "reference"), Source("rater", "simulated-rater-A")
    )
    ref = store.latest_masks_for_dataset(ds.id, "reference")
    sim = store.latest_masks_for_dataset(ds.id, "simulated-rater-A")
    row = result.per_image.iloc[0]
    a = imaging.decode_mask_png(ref[row.image_id].png)
    b = imaging.decode_mask_png(sim[row.image_id].png)
    assert row.iou == pytest.approx(metrics.mask_agreement(a, b).iou)
    table = result.per_image
    expected = metrics.cohen_kappa(table.grade_a, table.grade_b, weights="quadratic", n_boot=0)
    assert result.summary["kappa_quadratic"][0] == pytest.approx(expected.kappa)
    assert result.summary["n"] == 8 and 0.5 < result.summary["iou_mean"] < 1


def test_rater_matrix_is_symmetric_with_ones_on_the_diagonal(demo):
    """The IoU matrix of three raters is symmetric with a unit diagonal."""
    store, ds = demo
    raters = [Source("rater", n) for n in ("reference", "simulated-rater-A", "simulated-rater-B")]
    iou, _ = rater_matrix(store, ds.id, raters)
    assert np.allclose(iou.to_numpy(), iou.to_numpy().T) and np.allclose(np.diag(iou), 1)


def test_report_is_self_contained_html(demo):
    """The report embeds plotly.js once, names its methods and gives the figures."""
    store, ds = demo
    result = compare(
        store, ds.id, Source("rater", "reference"), Source("rater", "simulated-rater-B")
    )
    result = replace(result, selection={"gland": "parotid", "side": "any"})
    html = build_report(result, dataset="demo")
    assert len(html) > 3_000_000  # plotly.js itself is inside: opens offline
    assert '<script src="http' not in html
    assert "Cohen's kappa" in html and "Bland-Altman" in html and "Mean IoU" in html
    # Plain language only: no raw summary key, and the selection the figures are about.
    assert "iou_mean" not in html and "kappa_unweighted" not in html
    assert "bland_altman_mm2" not in html
    assert "gland parotid · side any" in html
    # The lowest-IoU table speaks words and rounds; the Bland-Altman sign matches the figure's.
    assert "<th>de Vita (A)</th>" in html and "<th>grade_a</th>" not in html
    assert "(mm², B - A)" in html and "A - B" not in html
    # the HD95 that Methods names is in the results, and eight images are called few
    assert "Median HD95" in html and "Only 8 images are compared" in html
    from sgus_core.demo import DEMO_NOTE

    assert "phantoms rendered by SGUS Studio" in build_report(
        result, dataset="d", data_note=DEMO_NOTE
    )


def test_summary_of_10000_pairs_is_computed_from_the_table(demo):
    """The aggregate works from the per-image table alone (no masks), at 10,000 rows."""
    import pandas as pd

    rng = np.random.default_rng(0)
    grades = rng.integers(0, 4, 10_000)
    table = pd.DataFrame(
        {
            "iou": rng.uniform(0.6, 1, 10_000),
            "dice": rng.uniform(0.7, 1, 10_000),
            "grade_a": grades,
            "grade_b": np.clip(grades + rng.integers(-1, 2, 10_000), 0, 3),
            "area_a_mm2": rng.uniform(100, 400, 10_000),
            "area_b_mm2": rng.uniform(100, 400, 10_000),
        }
    )
    summary = summarize(table)
    assert summary["n"] == 10_000 and len(summary["confusion"]) == 4


def test_review_page_shows_agreement_on_the_demo(demo):
    """The Review page compares reference and a simulated rater with metrics and plots."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("pages/review.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Review"
    assert any(m.label == "Mean IoU" for m in at.metric)
    # Eight demo frames: the page says the figures are rough rather than state a bare kappa.
    assert any("Only 8 images are compared" in w.value for w in at.warning)
    # Worst cases link to Browse with the dataset (and, when signed in, the sign-in) kept: a
    # bare /?image= opened a new tab on the sign-in form or another dataset.
    worst = next(d.value for d in at.dataframe if "open" in d.value.columns)
    assert all(link.startswith("/?image=") for link in worst["open"])
    at.query_params["dataset"] = "demo"  # as an address that names the dataset gives it
    at.run()
    worst = next(d.value for d in at.dataframe if "open" in d.value.columns)
    assert all(link.endswith("&dataset=demo") for link in worst["open"])


def _review_after_one_grade(store, ds, rater: str, devita: int) -> AppTest:
    """The Review page once ``rater`` has graded the dataset's first image (and nothing else)."""
    store.ensure_rater(rater)
    store.save_grade(store.list_images(ds.id)[0].id, rater, devita=devita)
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("pages/review.py").run()
    return at


def test_one_image_graded_by_both_gets_no_empty_grade_matrix(demo):
    """With one image graded by both sides the page says grade figures need two, and shows no
    all-zero confusion matrix in their place."""
    store, ds = demo
    at = _review_after_one_grade(store, ds, "newcomer", 2)
    at.selectbox(key="rev_b").select("rater newcomer").run()
    assert not at.exception, at.exception
    assert any("need at least two images graded by both" in w.value for w in at.warning)
    assert any("No grade matrix yet" in i.value for i in at.info)
    assert not [c for c in at.get("plotly_chart") if "grades" in c.proto.spec]
    # nor does the HTML report of the same pair (the full demo report draws it)
    one = compare(store, ds.id, Source("rater", "reference"), Source("rater", "newcomer"))
    full = compare(store, ds.id, Source("rater", "reference"), Source("rater", "simulated-rater-B"))
    assert '"text":"de Vita grades"' not in build_report(one, dataset="demo")
    assert '"text":"de Vita grades"' in build_report(full, dataset="demo")


def test_iou_histogram_counts_whole_images_and_names_its_reference_lines(demo):
    """Eight image pairs: the count axis steps by whole images, the literature's lines are named
    in the legend (not in labels that ran into each other), the sources under the title."""
    store, ds = demo
    pair = compare(store, ds.id, Source("rater", "reference"), Source("rater", "simulated-rater-B"))
    fig = iou_histogram(pair)
    assert fig.layout.yaxis.dtick == 1
    assert {shape.name for shape in fig.layout.shapes} == {
        f"{label} {value}" for label, value in REFERENCE_LINES.items()
    }
    assert not fig.layout.annotations
    assert fig.layout.title.text == "IoU per image"
    assert "simulated-rater-B" in fig.layout.title.subtitle.text
    # an outline compared with itself (IoU exactly 1) is drawn in the last bin, not dropped
    same = compare(store, ds.id, Source("rater", "reference"), Source("rater", "reference"))
    (bars,) = iou_histogram(same).data
    edge = bars.xbins.end - bars.xbins.size
    assert len(bars.x) == len(same.per_image) and all(edge <= x < bars.xbins.end for x in bars.x)


def test_review_says_which_raters_a_consensus_compared_with_one_of_them_is_made_of(demo):
    """The consensus option lists every rater; compared with rater A, the page says it is the
    consensus of the others (she is left out of it), and says nothing for the reference pair."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("pages/review.py").run()
    assert not any("the consensus is that of" in c.value for c in at.caption)
    at.selectbox(key="rev_a").select("rater simulated-rater-A").run()
    at.selectbox(key="rev_b").select(
        "consensus of reference, simulated-rater-A, simulated-rater-B"
    ).run()
    assert not at.exception, at.exception
    said = [c.value for c in at.caption if "the consensus is that of" in c.value]
    assert said and r"reference, simulated\-rater\-B" in said[0]


def test_evaluate_json_agrees_with_the_review_comparison(demo, tmp_path):
    """`sgus evaluate`'s figures equal the Review comparison of the same model and reference."""
    import json

    from sgus_core.inference.dataset import predict_dataset
    from sgus_core.nets import build_model
    from sgus_core.review.evaluation import evaluate_dataset

    store, ds = demo
    models = tmp_path / "models"
    models.mkdir()
    build_model("unet", input_shape=(64, 96, 1), base_filters=4, depth=2).save(
        models / "tiny.keras"
    )
    card = {"name": "tiny", "task": "segment", "architecture": "unet", "input_shape": [64, 96, 1]}
    (models / "tiny.json").write_text(json.dumps(card))
    predict_dataset(store, "demo", models, model="tiny")
    result = evaluate_dataset(store, "demo", "tiny", reference="reference")
    page = compare(store, ds.id, Source("rater", "reference"), Source("model", "tiny"))
    assert result["n"] == page.summary["n"] == 8
    assert result["iou_mean"] == pytest.approx(page.summary["iou_mean"])
    assert result["dice_mean"] == pytest.approx(page.summary["dice_mean"])


def test_grade_filter_restricts_the_figures(demo):
    """Restricting to source A's grade 0 keeps only those rows and recomputes the summary."""
    from sgus_core.review.comparisons import restrict

    store, ds = demo
    full = compare(store, ds.id, Source("rater", "reference"), Source("rater", "simulated-rater-A"))
    zero = restrict(full, full.per_image["grade_a"] == 0)
    assert set(zero.per_image["grade_a"]) == {0}
    assert zero.summary["n"] == (full.per_image["grade_a"] == 0).sum()


def test_review_starts_from_the_rater_with_the_most_labels(demo):
    """A rater who graded one frame (first in the list by name) is not the default reference:
    the page starts from the rater with labels on the most images (against the model, when one
    has predictions, else another source)."""
    store, ds = demo
    at = _review_after_one_grade(store, ds, "aaa-newcomer", 1)
    assert not at.exception, at.exception
    assert at.selectbox(key="rev_a").value == "rater reference"
    assert at.selectbox(key="rev_b").value != "rater reference"


def test_omeract_grades_are_compared_too(demo):
    """The raters' OMERACT (B-mode) grades get their own agreement, on the page and in the
    report, beside de Vita's; a model (which gives no OMERACT grade) gets none."""
    store, ds = demo
    result = compare(
        store, ds.id, Source("rater", "reference"), Source("rater", "simulated-rater-B")
    )
    assert result.summary["omeract_n"] == 8 and len(result.summary["omeract_confusion"]) == 4
    assert -1 <= result.summary["omeract_kappa_quadratic"][0] <= 1
    html = build_report(result, dataset="demo")
    assert "kappa of OMERACT, quadratic weights" in html and "omeract_n" not in html
    assert '"text":"OMERACT grades"' in html
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("pages/review.py").run()
    at.selectbox(key="rev_b").select("rater simulated-rater-B").run()
    assert not at.exception, at.exception
    assert {"Images graded by both", "OMERACT grade accuracy"} <= {m.label for m in at.metric}
