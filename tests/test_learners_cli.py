"""``xraybag learn``: plugin discovery of the example package (without installing it), train /
eval / predict / synthesize end to end on a tiny synthetic dataset, one-line errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from test_learners_data import make_dataset
from xraybag.cli.main import cli
from xraybag.learners.data import DetectionDataset

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "xraybag-example-learner"


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """Make the example package discoverable: a ``.dist-info`` with its entry points and the
    package folder on ``sys.path``, as ``pip install`` would leave them."""
    site = tmp_path / "site"
    dist = site / "xraybag_example_learner-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: xraybag-example-learner\nVersion: 0.1.0\n")
    import tomllib

    eps = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]["entry-points"]["xraybag.learners"]
    (dist / "entry_points.txt").write_text(
        "[xraybag.learners]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items())
    )
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(EXAMPLE))
    yield eps
    sys.modules.pop("xraybag_example_learner", None)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("cli-data"), bags=10)


def run(*args):
    return CliRunner().invoke(cli, ["learn", *map(str, args)])


def test_list_shows_the_example_plugin(plugin):
    assert set(plugin) == {"mean_box", "hflip"}
    r = run("list")
    assert r.exit_code == 0, r.output
    assert "mean_box  [model]  per-class mean box" in r.output
    assert "hflip  [synthesizer]" in r.output
    assert "min_score (float, default 0.0)" in r.output


def test_train_eval_predict_end_to_end(plugin, data, tmp_path):
    out = tmp_path / "run"
    r = run("train", "mean_box", "--data", data, "--out", out, "--input", "raw", "--opt", "epochs=2", "-q")
    assert r.exit_code == 0, r.output
    weights = out / "weights.json"
    assert r.output.strip().endswith(str(weights)) and weights.exists()
    rec = json.loads((out / "learn.json").read_text())
    assert rec["learner"] == "mean_box" and rec["input"] == "raw" and rec["opts"] == {"epochs": "2"}

    r = run("eval", "mean_box", "--weights", weights, "--data", data, "-q")
    assert r.exit_code == 0, r.output
    metrics = json.loads(r.output)
    written = json.loads((out / "eval_test" / "metrics.json").read_text())
    assert metrics == written and metrics["split"] == "test" and metrics["input"] == "raw"
    results = json.loads((out / "eval_test" / "results.json").read_text())
    test = DetectionDataset(data, split="test")
    assert {r["image_id"] for r in results} == set(test.image_ids)
    assert {"mAP", "mAP50", "mAP75", "mAP_small", "mAP_medium", "mAP_large", "per_class", "per_difficulty"} <= set(metrics)
    assert 0 <= metrics["mAP50"] <= 1 and set(metrics["per_difficulty"]) == {"easy", "hard", "hidden"}

    custom = tmp_path / "m"  # -o/--out is a folder
    r = run("eval", "mean_box", "--weights", weights, "--data", data, "--split", "val", "-o", custom, "-q")
    assert r.exit_code == 0 and (custom / "metrics.json").exists() and (custom / "results.json").exists()
    (out / "eval_all").write_text("x")  # the default folder is taken by a file: refused, one line
    r = run("eval", "mean_box", "--weights", weights, "--data", data, "--split", "all", "-q")
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert "eval_all is a file, not a folder" in r.output and len(r.output.strip().splitlines()) == 1

    pred = tmp_path / "pred"
    r = run("predict", "mean_box", "--weights", weights, "--data", data, "--out", pred, "--score-thr", "0.0")
    assert r.exit_code == 0, r.output
    res = json.loads((pred / "results.json").read_text())
    assert len(res) > 0 and {"image_id", "category_id", "bbox", "score"} <= set(res[0])
    drawn = sorted(p.name for p in (pred / "images").glob("*.png"))
    assert len(drawn) == 20
    # boxes are drawn: the output differs from the source image
    src = np.asarray(Image.open(data / "images" / drawn[0]))
    dst = np.asarray(Image.open(pred / "images" / drawn[0]))
    assert src.shape == dst.shape and (src != dst).any()
    # nothing drawn at a threshold above every score
    r = run("predict", "mean_box", "--weights", weights, "--data", data, "--out", tmp_path / "p2", "--score-thr", "1.1")
    assert r.exit_code == 0 and "(0 drawn" in r.output


def test_mean_box_beats_nothing_on_a_fixed_box_dataset(plugin, tmp_path):
    """When every object sits at the same place, the mean box is exact: mAP 1 on the test split."""
    root = make_dataset(tmp_path / "d", bags=10)
    coco = json.loads((root / "annotations.json").read_text())
    keep, seen = [], set()
    for a in coco["annotations"]:
        if a["image_id"] not in seen:
            seen.add(a["image_id"])
            keep.append(dict(a, bbox=[10.0, 8.0, 20.0, 16.0], category_id=3, difficulty="easy"))
    coco["annotations"] = keep
    (root / "annotations.json").write_text(json.dumps(coco))
    run("train", "mean_box", "--data", root, "--out", tmp_path / "r", "-q")
    r = run("eval", "mean_box", "--weights", tmp_path / "r" / "weights.json", "--data", root, "-q")
    assert r.exit_code == 0, r.output
    m = json.loads(r.output)
    assert m["mAP"] == 1.0 and m["per_class"]["knife"]["AP"] == 1.0


def test_synthesize_hflip(plugin, data, tmp_path):
    out = tmp_path / "flipped"
    r = run("synthesize", "hflip", "--data", data, "--out", out)
    assert r.exit_code == 0, r.output
    src = DetectionDataset(data, split="all", input="raw")
    dst = DetectionDataset(out, split="all", input="raw")
    assert len(dst) == 2 * len(src) and len(dst.bags) == 2 * len(src.bags)
    flipped = {im["flipped_from"]: i for i, im in enumerate(dst.images) if "flipped_from" in im}
    for i in range(3):
        a = src[i]
        b = dst[flipped[a.image_id]]
        np.testing.assert_array_equal(b.image, a.image[:, ::-1])
        w = a.width
        np.testing.assert_array_equal(b.boxes[:, [0, 2]], w - a.boxes[:, [2, 0]])
        np.testing.assert_array_equal(b.boxes[:, [1, 3]], a.boxes[:, [1, 3]])
        np.testing.assert_array_equal(b.masks(), a.masks()[:, :, ::-1])
    r = run("synthesize", "hflip", "--data", data, "--out", tmp_path / "only", "--opt", "keep_original=false")
    assert r.exit_code == 0 and len(DetectionDataset(tmp_path / "only", split="all")) == len(src)


def _one_line_error(r, *parts):
    assert r.exit_code == 2, r.output
    err = r.output.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    for p in parts:
        assert p in err, err


@pytest.mark.parametrize(
    "edit, parts",
    [
        (lambda r, c: c["annotations"][4]["bbox"].__setitem__(1, 45.0), ["annotations[4] (id ", "lies outside image"]),
        (lambda r, c: c["annotations"][0].__setitem__("category_id", 5), ["annotations[0] (id ", "unknown category_id 5"]),
        (lambda r, c: (r / c["images"][3]["file_name"]).unlink(), ["images[3] (id 4)", "image file images/000001_side.png is missing"]),
    ],
)
def test_bad_dataset_one_line_exit_2(plugin, tmp_path, edit, parts):
    root = make_dataset(tmp_path / "bad", bags=3)
    coco = json.loads((root / "annotations.json").read_text())
    edit(root, coco)
    (root / "annotations.json").write_text(json.dumps(coco))
    r = run("train", "mean_box", "--data", root, "--out", tmp_path / "run", "-q")
    _one_line_error(r, f"{root / 'annotations.json'}: ", *parts)


def test_user_errors(plugin, data, tmp_path):
    _one_line_error(run("train", "nope", "--data", data, "--out", tmp_path / "r"), "unknown learner 'nope'", "mean_box")
    _one_line_error(run("train", "mean_box", "--data", data, "--out", tmp_path / "r", "--opt", "lr=1"), "unknown option lr")
    _one_line_error(run("train", "hflip", "--data", data, "--out", tmp_path / "r"), "is a synthesizer")
    _one_line_error(run("synthesize", "mean_box", "--data", data, "--out", tmp_path / "s"), "is a model")
    _one_line_error(run("eval", "mean_box", "--weights", tmp_path / "none.json", "--data", data), "weights file does not exist")
    _one_line_error(run("train", "mean_box", "--data", tmp_path / "missing", "--out", tmp_path / "r"), "dataset folder does not exist")


def test_a_gpu_out_of_memory_is_one_line_naming_the_batch(plugin, data, tmp_path, monkeypatch):
    """torch's out-of-memory error on a GPU (raised here by the learner, as a batch too large for
    the card raises it in training) is one line, exit 2, naming what to make smaller; any other
    error from a learner keeps its traceback."""
    torch = pytest.importorskip("torch")
    import xraybag_example_learner as ex

    def oom(self, *a, **k):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 8.00 GiB total)\n"
                                          "more detail on a second line")

    monkeypatch.setattr(ex.MeanBoxModel, "train", oom)
    r = run("train", "mean_box", "--data", data, "--out", tmp_path / "r", "-q")
    _one_line_error(r, "the GPU ran out of memory (CUDA out of memory. Tried to allocate 2.00 GiB", "a smaller batch",
                    "xraybag learn list", "--device cpu")
    monkeypatch.setattr(ex.MeanBoxModel, "train", lambda self, *a, **k: 1 / 0)
    r = run("train", "mean_box", "--data", data, "--out", tmp_path / "r2", "-q")
    assert r.exit_code != 2 and isinstance(r.exception, ZeroDivisionError)


def test_train_on_several_datasets(plugin, data, tmp_path):
    """Repeated --data: the train splits joined, the later datasets' categories matched by name
    (here renumbered and one of them missing), ids kept unique; one-line errors."""
    from xraybag.learners.data import ConcatDetectionDataset

    other = make_dataset(tmp_path / "other", bags=4)
    coco = json.loads((other / "annotations.json").read_text())
    renumber = {3: 1, 7: 2, 9: 3}  # knife, gun, bottle -> 1, 2, 3; and no bottles at all
    coco["categories"] = [dict(c, id=renumber[c["id"]]) for c in coco["categories"] if c["name"] != "bottle"]
    coco["annotations"] = [dict(a, category_id=renumber[a["category_id"]]) for a in coco["annotations"]
                           if a["category_id"] != 9]
    (other / "annotations.json").write_text(json.dumps(coco))

    a, b = DetectionDataset(data, "train", splits=(1, 0, 0)), DetectionDataset(other, "train", splits=(1, 0, 0))
    joined = ConcatDetectionDataset([a, b])
    assert len(joined) == len(a) + len(b) and joined.class_names == a.class_names
    assert len(set(joined.image_ids)) == len(joined) and len(joined.bags) == len(a.bags) + len(b.bags)
    s, t = joined[len(a)], b[0]
    np.testing.assert_array_equal(s.image, t.image)
    assert [joined.class_names[i] for i in s.labels] == [b.class_names[i] for i in t.labels]
    gt = joined.coco_subset()
    assert len({x["id"] for x in gt["annotations"]}) == len(gt["annotations"]) == len(a.coco["annotations"]) + len(
        coco["annotations"])
    assert {x["category_id"] for x in gt["annotations"]} <= set(a.label_to_category_id)

    out = tmp_path / "run"
    r = run("train", "mean_box", "--data", data, "--data", other, "--out", out, "--splits", "1,0,0", "-q")
    assert r.exit_code == 0, r.output
    rec = json.loads((out / "learn.json").read_text())
    assert rec["data"] == str(data.resolve()) and rec["datasets"] == [str(data.resolve()), str(other.resolve())]
    model = json.loads((out / "weights.json").read_text())
    assert model["categories"] == a.label_to_category_id
    for label, cid in enumerate(a.label_to_category_id):  # each class's mean box over both datasets
        xywh = np.array([x["bbox"] for x in gt["annotations"] if x["category_id"] == cid])
        mean = np.stack([xywh[:, 0], xywh[:, 1], xywh[:, 0] + xywh[:, 2], xywh[:, 1] + xywh[:, 3]], 1).mean(0)
        np.testing.assert_allclose(model["mean_box"][label], mean / [64, 48, 64, 48], rtol=1e-9)

    coco["categories"].append({"id": 4, "name": "hammer"})
    (other / "annotations.json").write_text(json.dumps(coco))
    _one_line_error(run("train", "mean_box", "--data", data, "--data", other, "--out", tmp_path / "r2", "-q"),
                    f"{other / 'annotations.json'}: ", "categories 'hammer' are not among the first dataset's")
    _one_line_error(run("train", "mean_box", "--data", data, "--data", tmp_path / "missing", "--out", tmp_path / "r3"),
                    "dataset folder does not exist", str(tmp_path / "missing"))
    _one_line_error(run("train", "cyclegan", "--data", data, "--data", other, "--target", data, "--out", tmp_path / "r4"),
                    "several --data are for models", "'cyclegan' is a trainable synthesizer")
    assert not (tmp_path / "r2").exists() and not (tmp_path / "r3").exists() and not (tmp_path / "r4").exists()
