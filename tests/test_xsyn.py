"""The xsyn synthesizer on tiny models: the in-memory tokenizer, the GLIGEN pipeline folder saved and
loaded through diffusers' ``from_pretrained`` (local files only) and refused when it is not one, the
inpainting input layout, the sampler (pixels outside the mask untouched, attention maps, BOM), the
trainer (checkpoints, resume, validation grid) and the command line (train, synthesize M and A with
CAR and BOM, labels kept, bad input). The geometry of CAR and BOM is tested in test_xsyn_geometry.py;
whether a trained model paints the requested class is measured by benchmarks/xsyn_toy.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from helpers import ROOT, run_cli

from xraybag.errors import XraybagError
from xraybag.learners.xsyn import model
from xraybag.learners.xsyn.sampling import inpaint, inpaint_windows, latent_keep

FAST = {"vae_iterations": 2, "iterations": 3, "batch": 2, "val_images": 1, "steps": 2, "checkpoint_every": 2,
        "threads": 1}


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("xsyn") / "toy"
    res = run_cli("render", ROOT / "benchmarks" / "xsyn_toy.yaml", "-n", "6", "-o", out)
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="module")
def trained(toy, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("xsyn-run") / "run"
    res = run_cli("learn", "train", "xsyn", "--data", toy, "-o", run, "--quiet",
                  *[f"--opt={k}={v}" for k, v in FAST.items()])
    assert res.exit_code == 0, res.output
    return run


@pytest.fixture(scope="module")
def seg_weights(toy, tmp_path_factory) -> Path:
    from xraybag.learners.apsam.learner import SAMFinetuneSegmenter
    from xraybag.learners.seg_data import SegmentationDataset

    data = SegmentationDataset(toy, split="all", channels="pseudo_colour", min_side=32)
    return SAMFinetuneSegmenter(image_size=64, epochs=1, batch_size=2).train(
        data, tmp_path_factory.mktemp("xsyn-sam") / "sam", device="cpu", progress=False)


# ---------------------------------------------------------------- the parts


def test_tokenizer_makes_each_class_word_one_token():
    pipe = model.build("tiny", ["knife", "bottle", "folding_knife"])
    tok = pipe.tokenizer
    ids = tok("knife bottle folding_knife").input_ids
    assert tok.convert_ids_to_tokens(ids) == ["<|startoftext|>", "knife</w>", "bottle</w>", "folding</w>", "_</w>",
                                              "knife</w>", "<|endoftext|>"]
    # the prompt is the phrases joined: knife at 1, bottle at 2, folding _ knife at 3..5
    assert model.phrase_spans(pipe, ["knife", "bottle", "folding_knife"]) == [[1], [2], [3, 4, 5]]
    with pytest.raises(XraybagError, match="not one the model was trained on"):
        model.check_phrases(pipe, ["gun"])


def test_pipeline_saves_and_loads_through_from_pretrained(tmp_path):
    pipe = model.build("tiny", ["knife", "bottle"], seed=3)
    pipe.save(tmp_path / "p")
    index = json.loads((tmp_path / "p" / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionGLIGENPipeline"
    back = model.load_pipeline(tmp_path / "p")
    assert back.unet.config.attention_type == "gated" and back.unet.config.in_channels == 9
    assert back.class_names == ["knife", "bottle"] and back.factor == 4 and back.multiple == 8
    for a, b in zip(pipe.unet.state_dict().values(), back.unet.state_dict().values()):
        assert torch.equal(a, b)
    assert back.tokenizer("knife").input_ids == pipe.tokenizer("knife").input_ids
    # a fresh gated layer's gates are zero: boxes only matter once trained
    gates = [m.alpha_attn.item() for m in back.unet.modules() if hasattr(m, "alpha_attn")]
    assert gates and all(g == 0 for g in gates)


def test_a_folder_that_is_not_a_gligen_inpainting_pipeline_is_refused(tmp_path):
    with pytest.raises(XraybagError, match="does not exist"):
        model.check_folder(tmp_path / "none")
    (tmp_path / "empty").mkdir()
    with pytest.raises(XraybagError, match="no model_index.json"):
        model.check_folder(tmp_path / "empty")
    pipe = model.build("tiny", ["knife"])
    pipe.save(tmp_path / "p")
    cfg_path = tmp_path / "p" / "unet" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg_path.write_text(json.dumps(dict(cfg, attention_type="default")))
    with pytest.raises(XraybagError, match="attention_type is 'default'"):
        model.check_folder(tmp_path / "p")
    cfg_path.write_text(json.dumps(dict(cfg, in_channels=4)))
    with pytest.raises(XraybagError, match="not an inpainting one"):
        model.check_folder(tmp_path / "p")


def test_inpainting_input_is_z_t_then_masked_z0_then_mask():
    z_t = torch.full((1, 4, 2, 2), 7.0)
    z0 = torch.arange(16.0).reshape(1, 4, 2, 2)
    m = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])  # kept on the diagonal
    x = model.inpaint_input(z_t, z0, m)
    assert x.shape == (1, 9, 2, 2)
    assert torch.equal(x[:, :4], z_t)
    # z0 * m: channel 0 is [[0, 1], [2, 3]] -> [[0, 0], [0, 3]]
    assert x[0, 4].tolist() == [[0.0, 0.0], [0.0, 3.0]]
    assert x[0, 7].tolist() == [[12.0, 0.0], [0.0, 15.0]]
    assert torch.equal(x[:, 8:], m)


def test_latent_keep_paints_every_cell_that_holds_a_painted_pixel():
    keep = torch.ones(1, 1, 8, 8)
    keep[0, 0, 5, 2] = 0  # one painted pixel, in latent cell (1, 0) at factor 4
    m = latent_keep(keep, 4)
    assert m[0, 0].tolist() == [[1.0, 1.0], [0.0, 1.0]]


def test_inpaint_changes_only_the_masked_pixels_and_bom_only_its_regions():
    pipe = model.build("tiny", ["knife", "bottle"])
    rng = np.random.default_rng(0)
    img = rng.random((37, 45, 3)).astype(np.float32)  # not a multiple of 8: padded and cropped
    keep = np.ones((37, 45), bool)
    keep[10:20, 12:30] = False
    res = inpaint(pipe, img, keep, ["knife"], [[12, 10, 30, 20]], steps=2, seed=1)
    assert res.image.shape == img.shape and np.array_equal(res.image[keep], img[keep])
    assert not np.array_equal(res.image[~keep], img[~keep])
    assert res.attention.shape == (1, 37, 45) and np.all(res.attention >= 0) and np.all(res.attention <= 1)
    assert res.attention.max() > 0 and res.hidden is None
    res2 = inpaint(pipe, img, keep, ["knife"], [[12, 10, 30, 20]], steps=2, seed=1, occluder=[0, 28, 16, 37],
                   alpha=0.3, rng=np.random.default_rng(0))
    assert np.array_equal(res2.image, res.image)  # same seed, same painting; BOM only adds the hidden result
    assert res2.edited.sum() > (~keep).sum()
    assert np.array_equal(res2.hidden[~res2.edited], img[~res2.edited])
    assert not np.array_equal(res2.hidden, res2.image)


def test_windows_paint_each_object_in_its_own_window_and_nothing_else():
    pipe = model.build("tiny", ["knife", "bottle"])
    img = np.random.default_rng(1).random((40, 96, 3)).astype(np.float32)
    boxes = [[4, 10, 14, 20], [80, 12, 90, 30]]  # 66 px apart: two windows of 32 px
    res = inpaint_windows(pipe, img, ["knife", "bottle"], boxes, 2, 32, occluder=[40, 0, 56, 16], steps=2,
                          rng=np.random.default_rng(0))
    painted = np.zeros((40, 96), bool)
    painted[8:22, 2:16] = painted[10:32, 78:92] = True  # the boxes grown by 2 px
    assert np.array_equal(res.image[~painted], img[~painted]) and not np.array_equal(res.image, img)
    assert np.array_equal(res.hidden[~res.edited], img[~res.edited]) and (res.edited & ~painted).any()
    # each object's attention lives in its own window only (window 0: x 0..32, window 1: x 64..96)
    assert res.attention[0][:, 32:].max() == 0 and res.attention[0][:, :32].max() > 0
    assert res.attention[1][:, :64].max() == 0 and res.attention[1][:, 64:].max() > 0


# ---------------------------------------------------------------- training


def test_training_writes_checkpoints_a_grid_and_resumes(toy, trained):
    pipe_dir = trained / "pipeline"
    back = model.load_pipeline(pipe_dir)
    assert back.meta["iteration"] == FAST["iterations"] and back.meta["vae_iteration"] == FAST["vae_iterations"]
    assert set(back.meta["class_areas"]) <= {"knife", "bottle"} and back.vae.config.scaling_factor != 0.18215
    log = [json.loads(line) for line in (trained / "train_log.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in log] == ["vae"] * 2 + ["unet"] * 3
    assert list((trained / "val").glob("iter_*.png"))
    # resume: three more UNet iterations continue the count
    res = run_cli("learn", "train", "xsyn", "--data", toy, "-o", trained, "--resume", "--quiet", "--opt=iterations=6")
    assert res.exit_code == 0, res.output
    log = [json.loads(line) for line in (trained / "train_log.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in log if r["stage"] == "unet"] == [1, 2, 3, 4, 5, 6]  # each once
    assert model.load_pipeline(pipe_dir).meta["iteration"] == 6


# ---------------------------------------------------------------- synthesis


def _coco(path: Path) -> dict:
    return json.loads((path / "annotations.json").read_text())


def test_variant_m_repaints_every_object_and_keeps_the_rest(toy, trained, tmp_path):
    from PIL import Image
    from pycocotools import mask as mask_utils

    out = tmp_path / "m"
    res = run_cli("learn", "synthesize", "xsyn", "--data", toy, "--out", out, f"--opt=checkpoint={trained / 'pipeline'}",
                  "--opt=car=false", "--opt=bom=false", "--opt=steps=2", "--opt=relabel=knife:bottle")
    assert res.exit_code == 0, res.output
    src, gen = _coco(toy), _coco(out)
    assert len(gen["images"]) == len(src["images"])
    by_id = {im["id"]: im for im in src["images"]}
    for im in gen["images"]:
        syn = im["synthetic"]
        assert syn["method"] == "xsyn" and syn["variant"] == "M" and "raw" not in im
        orig = by_id[syn["source_image"]]
        a = np.asarray(Image.open(toy / orig["file_name"]))
        b = np.asarray(Image.open(out / im["file_name"]))
        edit = mask_utils.decode(syn["edit_mask"]).astype(bool)
        assert np.array_equal(a[~edit], b[~edit])  # pixels outside the mask unchanged
        anns = [x for x in gen["annotations"] if x["image_id"] == im["id"]]
        srcs = [x for x in src["annotations"] if x["image_id"] == orig["id"]]
        assert len(anns) == len(srcs)
        for x in anns:
            s = next(y for y in srcs if y["id"] == x["synthetic"]["source_annotation"])
            assert x["synthetic"]["grounding_box"] == pytest.approx(s["bbox"], abs=1e-3)
            assert x["synthetic"]["requested"] == "bottle"  # knife:bottle relabelled, bottle kept
            assert x["category_id"] == next(c["id"] for c in gen["categories"] if c["name"] == "bottle")


def test_car_bom_and_variant_a_with_a_promptable_segmenter(toy, trained, seg_weights, tmp_path):
    common = [f"--opt=checkpoint={trained / 'pipeline'}", f"--opt=segmenter_weights={seg_weights}",
              "--opt=steps=2", "--opt=grid=4", "--opt=d=0.5", "--opt=min_box_ratio=0.0001"]
    out = tmp_path / "m"
    res = run_cli("learn", "synthesize", "xsyn", "--data", toy, "--out", out, *common, "--opt=car_compare=0,2")
    assert res.exit_code == 0, res.output
    gen = _coco(out)
    painted = [a for a in gen["annotations"] if "synthetic" in a]
    assert painted and all(set(a["synthetic"]["car_boxes"]) <= {"0", "2", "4"} for a in painted)
    assert any(a["synthetic"]["car_boxes"] for a in painted)
    for a in painted:
        if "4" in a["synthetic"]["car_boxes"]:
            assert a["bbox"] == a["synthetic"]["car_boxes"]["4"]
    out_a = tmp_path / "a"
    res = run_cli("learn", "synthesize", "xsyn", "--data", toy, "--out", out_a, *common, "--opt=variant=A",
                  "--opt=car=false")
    assert res.exit_code == 0, res.output
    gen, src = _coco(out_a), _coco(toy)
    for im in gen["images"]:
        anns = [a for a in gen["annotations"] if a["image_id"] == im["id"]]
        added = [a for a in anns if "synthetic" in a]
        kept = [a for a in anns if "synthetic" not in a]
        assert len(added) == 1 and added[0]["synthetic"]["requested"] in ("knife", "bottle")
        srcs = [a for a in src["annotations"] if a["image_id"] == im["synthetic"]["source_image"]]
        assert [dict(a, id=0, image_id=0) for a in kept] == [dict(a, id=0, image_id=0) for a in srcs]


def test_bad_input_is_one_line_and_exit_2(toy, trained, tmp_path):
    bad = tmp_path / "notapipe"
    bad.mkdir()
    cases = [
        (["--opt", f"checkpoint={bad}"], "no model_index.json"),
        (["--opt", f"checkpoint={trained / 'pipeline'}", "--opt", "relabel=knife:gun", "--opt", "car=false",
          "--opt", "bom=false"], "'gun' is not one the model was trained on"),
        (["--opt", f"checkpoint={trained / 'pipeline'}", "--opt", "variant=A"], "segmenter_weights is required"),
    ]
    for opts, msg in cases:
        out = tmp_path / f"out{len(msg)}"
        res = run_cli("learn", "synthesize", "xsyn", "--data", toy, "--out", out, *opts)
        assert res.exit_code == 2, res.output
        assert msg in res.output and "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1
        assert not out.exists()
    # a box outside its image: the dataset is refused before anything runs
    broken = tmp_path / "broken"
    broken.mkdir()
    for p in toy.iterdir():
        (broken / p.name).symlink_to(p)
    (broken / "annotations.json").unlink()
    coco = _coco(toy)
    coco["annotations"][0]["bbox"][0] = coco["images"][0]["width"] + 5.0
    (broken / "annotations.json").write_text(json.dumps(coco))
    res = run_cli("learn", "synthesize", "xsyn", "--data", broken, "--out", tmp_path / "o2",
                  "--opt", f"checkpoint={trained / 'pipeline'}")
    assert res.exit_code == 2 and "lies outside image" in res.output and not (tmp_path / "o2").exists()
    res = run_cli("learn", "train", "xsyn", "--data", toy, "--target", toy, "-o", tmp_path / "r")
    assert res.exit_code == 2 and "--target" in res.output and not (tmp_path / "r").exists()


def test_the_segmenter_work_set_opens_for_a_dataset_without_categories(tmp_path):
    from xraybag.learners.seg_data import SegmentationDataset
    from xraybag.learners.xsyn.car import write_work_set

    write_work_set(tmp_path / "w", [(3, np.zeros((20, 30, 3), np.float32))], [])  # unlabelled benign bags
    data = SegmentationDataset(tmp_path / "w", split="all", channels="pseudo_colour", min_side=1)
    assert [im["id"] for im in data.images] == [3] and data.images[0]["width"] == 30
