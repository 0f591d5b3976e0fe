"""Prompted segmentation: prompt encoding, the prompts CSV, canvas marks, and `sgus predict --prompts`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from sgus_cli.main import main
from sgus_core.annotate.editing import Region
from sgus_core.annotate.prompting import (
    BOX_COLOUR,
    EXCLUDE_COLOUR,
    INCLUDE_COLOUR,
    next_prompt,
    read_marks,
    split_canvas,
)
from sgus_core.errors import ModelError, PromptError
from sgus_core.imaging import Frame, Rect
from sgus_core.inference.pipeline import segment_prompted
from sgus_core.inference.prompts import (
    Prompt,
    encode_prompt,
    parse_points,
    prompt_region,
    read_prompts_csv,
)
from sgus_core.synthesis.phantom import generate_frame


class BoxEcho:
    """A fake prompted segmenter: its gland probability is the box channel it is given."""

    name = "box-echo"
    runtime = "test"
    input_shape = (64, 96, 4)

    def predict_probabilities(self, batch: np.ndarray) -> np.ndarray:
        return batch[..., 1]


def test_box_channel_covers_the_box_inside_the_crop():
    """The box channel is 1 exactly over the box's place in the resized crop, 0 elsewhere."""
    region = Rect(100, 50, 200, 100)  # the crop; resized to 50 x 100 = half size
    channels = encode_prompt(Prompt((140, 70, 239, 109)), region, (50, 100))
    box = channels[..., 0]
    rows, cols = np.nonzero(box)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (10, 29, 20, 69)
    assert channels[..., 1:].max() == 0


def test_clicks_peak_where_they_were_given():
    """Include and exclude clicks are bumps of height 1 at their place in the crop."""
    region = Rect(0, 0, 200, 100)
    channels = encode_prompt(
        Prompt((0, 0, 199, 99), ((50.0, 20.0),), ((150.0, 80.0),)), region, (100, 200)
    )
    assert np.unravel_index(np.argmax(channels[..., 1]), (100, 200)) == (20, 50)
    assert np.unravel_index(np.argmax(channels[..., 2]), (100, 200)) == (80, 150)
    assert channels[..., 1].max() == pytest.approx(1.0, abs=0.05)


def test_prompt_region_pads_the_box_and_stays_in_the_frame():
    """The crop is the box padded by a quarter of its size, clipped at the frame's edges."""
    assert prompt_region((100, 100, 199, 139), (480, 640)) == Rect(75, 90, 150, 60)
    assert prompt_region((0, 0, 99, 39), (480, 640)) == Rect(0, 0, 125, 50)


def test_a_box_outside_or_inverted_is_refused_with_a_reason():
    """Inverted boxes and boxes or clicks off the frame raise PromptError saying what is wrong."""
    with pytest.raises(PromptError, match="empty or inverted"):
        Prompt((50, 50, 10, 80)).checked((100, 100))
    with pytest.raises(PromptError, match="outside the 100 x 100 frame"):
        Prompt((200, 200, 300, 300)).checked((100, 100))
    with pytest.raises(PromptError, match="click"):
        Prompt((10, 10, 50, 50), ((500.0, 5.0),)).checked((100, 100))
    assert Prompt((-5, 10, 500, 50)).checked((100, 100)).box == (0, 10, 99, 50)


def test_prompted_segmentation_answers_inside_the_box():
    """With a prompt, the mask is what the network says about the box's neighbourhood, placed
    back at the frame's size (the echo network returns the box itself)."""
    frame = Frame(np.zeros((300, 400), np.uint8), None, Rect(0, 0, 400, 300))
    prediction = segment_prompted(BoxEcho(), frame, Prompt((100, 120, 299, 179)))
    rows, cols = np.nonzero(prediction.mask)
    assert prediction.mask.shape == (300, 400)
    assert abs(rows.min() - 120) <= 2 and abs(rows.max() - 179) <= 2
    assert abs(cols.min() - 100) <= 3 and abs(cols.max() - 299) <= 3


def test_a_segmenter_without_prompt_channels_says_so():
    """Prompting a one-channel segmenter is a ModelError naming it."""

    class Plain(BoxEcho):
        input_shape = (64, 96, 1)

    frame = Frame(np.zeros((100, 100), np.uint8), None, Rect(0, 0, 100, 100))
    with pytest.raises(ModelError, match="does not take box or click prompts"):
        segment_prompted(Plain(), frame, Prompt((10, 10, 50, 50)))


def test_prompts_csv_reads_boxes_and_clicks(tmp_path):
    """The CSV gives one prompt per file name, with optional include and exclude clicks."""
    path = tmp_path / "prompts.csv"
    path.write_text(
        "image,x0,y0,x1,y1,include,exclude\nsub/a.png,1,2,30,40,5 6;7 8,\nb.png,0,0,9,9,,3 3\n"
    )
    prompts = read_prompts_csv(path)
    assert prompts["a.png"] == Prompt((1, 2, 30, 40), ((5.0, 6.0), (7.0, 8.0)), ())
    assert prompts["b.png"].exclude == ((3.0, 3.0),)
    assert parse_points(" ") == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("image,x0,y0,x1\na.png,1,2,3\n", "lacks the column"),
        ("image,x0,y0,x1,y1\na.png,1,2,three,4\n", "line 2 .*must be numbers"),
        ("image,x0,y0,x1,y1,include\na.png,1,2,3,4,5\n", "line 2 .*not 'x y'"),
    ],
)
def test_a_malformed_prompts_csv_names_the_problem(tmp_path, text, message):
    """A missing column, a non-number or a bad click gives PromptError with the line."""
    path = tmp_path / "p.csv"
    path.write_text(text)
    with pytest.raises(PromptError, match=message):
        read_prompts_csv(path)


def test_canvas_marks_become_a_prompt_in_frame_pixels():
    """A box drawn with the box colour and point clicks map through the zoom to frame pixels;
    mask strokes stay with the drawing."""
    drawing = {
        "objects": [
            {"type": "path", "stroke": "#00dc78", "path": [["M", 1, 1], ["L", 5, 5]]},
            {"type": "rect", "stroke": BOX_COLOUR, "left": 10, "top": 20, "width": 50,
             "height": 30, "originX": "left", "originY": "top", "strokeWidth": 2},
            {"type": "circle", "stroke": INCLUDE_COLOUR, "left": 30, "top": 35, "radius": 4,
             "originX": "center", "originY": "center", "strokeWidth": 2},
            {"type": "circle", "stroke": EXCLUDE_COLOUR, "left": 12, "top": 22, "radius": 4,
             "originX": "center", "originY": "center", "strokeWidth": 2},
        ]
    }  # fmt: skip
    rest, marks = split_canvas(drawing)
    assert [o["type"] for o in rest["objects"]] == ["path"]
    region = Region(100, 50, 200, 100)  # shown at half size on a 100 x 50 canvas
    read = read_marks(marks, display_size=(100, 50), region=region)
    assert read.box is not None
    x0, y0, x1, y1 = read.box
    assert abs(x0 - 122) <= 2 and abs(y0 - 92) <= 2 and abs(x1 - 221) <= 2 and abs(y1 - 151) <= 2
    assert read.include == (pytest.approx((159.5, 119.5), abs=1.0),)
    assert read.exclude == (pytest.approx((123.5, 93.5), abs=1.0),)


def test_clicks_after_a_box_add_to_its_prompt():
    """A new box starts a new prompt; later clicks keep the box and add up."""
    from sgus_core.annotate.prompting import Marks

    first = next_prompt(None, Marks((1, 2, 30, 40), (), ()))
    assert first == Prompt((1, 2, 30, 40))
    second = next_prompt(first, Marks(None, ((5.0, 5.0),), ()))
    assert second == Prompt((1, 2, 30, 40), ((5.0, 5.0),), ())
    assert next_prompt(None, Marks(None, ((5.0, 5.0),), ())) is None


@pytest.fixture
def prompted_models(tmp_path, monkeypatch):
    """A models folder whose default segmenter is a tiny untrained 4-channel (prompted) U-Net."""
    from sgus_core.nets import build_model

    models = tmp_path / "models"
    models.mkdir()
    build_model("unet", input_shape=(64, 96, 4), base_filters=4, depth=2).save(
        models / "tinyp.keras"
    )
    card = {"name": "tinyp", "task": "segment", "architecture": "unet", "input_shape": [64, 96, 4]}
    (models / "tinyp.json").write_text(json.dumps(card))
    (models / "default.json").write_text(json.dumps({"segment": "tinyp", "prompted": "tinyp"}))
    monkeypatch.setenv("SGUS_MODELS_DIR", str(models))
    monkeypatch.setenv("SGUS_DB_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    return models


@pytest.mark.slow
def test_predict_with_prompts_segments_prompted_frames_inside_their_box(
    tmp_path, prompted_models, capsys
):
    """`sgus predict --prompts` sends the frames with a row to the prompted segmenter (their mask
    stays in the box's neighbourhood), the others to the zero-shot one, and skips a bad box with
    its reason."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for seed in (1, 2, 3):
        cv2.imwrite(str(folder / f"f{seed}.png"), generate_frame(seed).image)
    prompts = tmp_path / "prompts.csv"
    prompts.write_text(
        "image,x0,y0,x1,y1,include\nf1.png,200,150,399,229,300 190\nf3.png,5000,10,6000,20,\n"
    )
    out = tmp_path / "out"
    assert main(["predict", str(folder), "--out", str(out), "--prompts", str(prompts)]) == 0
    printed = capsys.readouterr().out
    assert "f3.png" in printed and "outside" in printed
    with (out / "predictions.csv").open() as handle:
        rows = {Path(r["image"]).name: r for r in csv.DictReader(handle)}
    assert set(rows) == {"f1.png", "f2.png"}
    mask = cv2.imread(str(out / "masks" / "f1.png"), cv2.IMREAD_UNCHANGED) > 0
    region = prompt_region((200, 150, 399, 229), mask.shape)
    outside = mask.copy()
    outside[region.slices] = False
    assert not outside.any()


def test_predict_with_a_malformed_prompts_csv_fails_in_one_line(tmp_path, prompted_models, capsys):
    """A prompts CSV without the box columns stops `sgus predict` with exit 1 and one line."""
    frame = tmp_path / "f.png"
    cv2.imwrite(str(frame), generate_frame(1).image)
    prompts = tmp_path / "p.csv"
    prompts.write_text("image,x0\nf.png,1\n")
    assert (
        main(["predict", str(frame), "--out", str(tmp_path / "o"), "--prompts", str(prompts)]) == 1
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "lacks the column" in err[0]
