"""The Deep SGUS frozen-graph backend, on a small graph with the published tensor names."""

from __future__ import annotations

import numpy as np
import pytest

from sgus_core.errors import ModelError
from sgus_core.imaging import Frame, Rect
from sgus_core.inference import segment_frames
from sgus_core.inference.frozen_graph import FrozenGraphSegmenter


def _write_graph(path, names_ok=True):
    """A TF1 graph with the Deep SGUS names: gland = pixels brighter than 128 (on any channel)."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        image = tf.compat.v1.placeholder(tf.float32, [None, 224, 224, 3], name="input_image")
        keep = tf.compat.v1.placeholder(tf.float32, name="keep_probabilty")
        training = tf.compat.v1.placeholder(tf.bool, name="TRAINING")
        score = tf.reduce_mean(image, axis=-1) * keep + tf.cast(training, tf.float32) * 1000.0
        with tf.compat.v1.name_scope("inference"):
            tf.cast(score > 128.0, tf.int64, name="prediction" if names_ok else "other")
    path.write_bytes(graph.as_graph_def().SerializeToString())
    return path


def test_frozen_graph_gives_the_gland_at_the_frames_size(tmp_path):
    """A bright rectangle in a 300x200 frame comes back as the mask at the frame's size."""
    segmenter = FrozenGraphSegmenter(_write_graph(tmp_path / "frozen_graph.pb"))
    pixels = np.full((200, 300), 20, np.uint8)
    pixels[50:150, 60:240] = 220
    frame = Frame(pixels, 0.1, Rect(0, 0, 300, 200))
    (prediction,) = segment_frames(segmenter, [frame])
    assert prediction.mask.shape == (200, 300)
    truth = pixels > 128
    iou = (prediction.mask & truth).sum() / (prediction.mask | truth).sum()
    assert iou > 0.97
    assert prediction.area_mm2 == pytest.approx(prediction.area_px * 0.01)
    assert len(prediction.contour) > 4


def test_graph_without_the_published_names_is_refused(tmp_path):
    """A graph lacking inference/prediction is refused with the missing names."""
    with pytest.raises(ModelError, match="inference/prediction"):
        FrozenGraphSegmenter(_write_graph(tmp_path / "g.pb", names_ok=False))


def test_a_file_that_is_not_a_graph_is_refused(tmp_path):
    """Random bytes are not a frozen graph."""
    (tmp_path / "x.pb").write_bytes(b"\x00\x01garbage")
    with pytest.raises(ModelError):
        FrozenGraphSegmenter(tmp_path / "x.pb")


def test_a_frozen_graph_is_loaded_by_path_through_load_model(tmp_path):
    """`load_model("…/frozen_graph.pb", …)` serves the graph through the same interface."""
    from sgus_core.inference import load_model

    path = _write_graph(tmp_path / "frozen_graph.pb")
    model = load_model(str(path), tmp_path)
    assert model.runtime == "frozen_graph" and model.card["task"] == "segment"
