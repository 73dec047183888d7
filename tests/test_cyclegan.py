"""The ``cyclegan`` synthesizer: losses against hand-computed values, the image pool, the networks'
shapes and receptive field, training with checkpoints and resume, translation of a labelled dataset
(labels byte-identical, sizes kept) and one-line errors."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
import yaml
from click.testing import CliRunner
from PIL import Image

from test_learners_data import make_dataset
from xraybag.cli.main import cli
from xraybag.errors import XraybagError
from xraybag.learners.cyclegan import trainer
from xraybag.learners.cyclegan.losses import cycle_loss, discriminator_loss, identity_loss, lsgan_loss
from xraybag.learners.cyclegan.networks import (
    PatchDiscriminator,
    PixelDiscriminator,
    ResidualBlock,
    ResnetGenerator,
    init_weights,
    receptive_field,
)
from xraybag.learners.cyclegan.pool import ImagePool, PixelPool
from xraybag.learners.cyclegan.synth import CycleGANSynthesizer
from xraybag.learners.data import DetectionDataset

FAST = {"preset": "test", "size": 32, "ngf": 8, "ndf": 16, "n_blocks": 2, "threads": 1}


def run(*args):
    return CliRunner().invoke(cli, ["learn", *map(str, args)])


def one_line_error(r, text: str) -> None:
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0], r.output


#: tiny residual networks with pixel discriminators, for single training steps
PIXEL_CFG = {"channels": 3, "ngf": 4, "ndf": 4, "n_blocks": 1, "residual": True, "pointwise": 4, "pixel_gan": 1.0}


def tiny_game(cfg: dict) -> tuple[dict, list, torch.optim.Optimizer, torch.optim.Optimizer]:
    """``trainer.build(cfg)``'s networks initialised, the discriminators' parameters and both Adams."""
    nets = {k: init_weights(net) for k, net in trainer.build(cfg).items()}
    d_params = [p for k, net in nets.items() if not k.startswith("G_") for p in net.parameters()]
    opt_g = torch.optim.Adam([p for k in ("G_AB", "G_BA") for p in nets[k].parameters()], lr=1e-3)
    return nets, d_params, opt_g, torch.optim.Adam(d_params, lr=1e-3)


def belt_crop() -> tuple[torch.Tensor, torch.Tensor]:
    """A 32 px crop in [-1, 1]: a 12 x 26 px orange bag on a bluish-white belt, and its foreground mask."""
    belt = np.array([0.95, 0.96, 1.0], np.float32)
    img = np.broadcast_to(belt, (32, 32, 3)).copy()
    img[8:20, 4:30] = [0.9, 0.6, 0.3]
    t = torch.from_numpy(img.transpose(2, 0, 1)).unsqueeze(0) * 2 - 1
    return t, trainer.foreground(t, trainer.background_colour(img))


def image_folder(root: Path, n: int, h: int = 40, w: int = 44, grey: bool = False, seed: int = 0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        arr = (rng.random((h, w) if grey else (h, w, 3)) * 255).astype(np.uint8)
        Image.fromarray(arr).save(root / f"img{i}.png")
    return root


def odd_dataset(root: Path) -> Path:
    """Two images of 50 x 38 px (not multiples of 4) with raw channels, labels and a manifest."""
    from pycocotools import mask as mask_utils

    for sub in ("images", "raw", "labels"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    images, anns, manifest = [], [], []
    rng = np.random.default_rng(3)
    for b in range(2):
        stem = f"{b:06d}_top"
        rgb = (rng.random((38, 50, 3)) * 255).astype(np.uint8)
        lab = np.zeros((38, 50), np.uint8)
        lab[5:20, 10:30] = 1
        Image.fromarray(rgb).save(root / "images" / f"{stem}.png")
        Image.fromarray(lab).save(root / "labels" / f"{stem}.png")
        tifffile.imwrite(root / "raw" / f"{stem}_low.tiff", np.full((38, 50), 40000, np.uint16))
        tifffile.imwrite(root / "raw" / f"{stem}_high.tiff", np.full((38, 50), 50000, np.uint16))
        rle = mask_utils.encode(np.asfortranarray(lab))
        rle["counts"] = rle["counts"].decode()
        images.append({"id": b + 1, "file_name": f"images/{stem}.png", "width": 50, "height": 38, "bag": b,
                       "view": "top", "labels": f"labels/{stem}.png",
                       "raw": {"low": f"raw/{stem}_low.tiff", "high": f"raw/{stem}_high.tiff"},
                       **({"synthetic": {"method": "tip"}} if b == 1 else {})})
        anns.append({"id": (b + 1) * 10000 + 1, "image_id": b + 1, "category_id": 3, "bbox": [10.0, 5.0, 20.0, 15.0],
                     "area": 300, "segmentation": rle, "iscrowd": 0, "difficulty": "easy", "occlusion": 0.0})
        files = {f"images/{stem}.png": hashlib.sha256((root / "images" / f"{stem}.png").read_bytes()).hexdigest(),
                 f"raw/{stem}_low.tiff": "x"}
        manifest.append(json.dumps({"bag": b, "files": files}))
    coco = {"info": {}, "categories": [{"id": 3, "name": "knife"}], "images": images, "annotations": anns}
    (root / "annotations.json").write_text(json.dumps(coco))
    (root / "manifest.jsonl").write_text("\n".join(manifest) + "\n")
    return root


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cg-weights")
    a, b = image_folder(root / "A", 3), image_folder(root / "B", 3, seed=1)
    return CycleGANSynthesizer(**FAST, iterations=2).train(a, b, root / "run", device="cpu", progress=False)


# ---------------------------------------------------------------- losses


def test_losses_against_hand_computed_values():
    pred = torch.tensor([[0.5, 1.5], [0.0, 2.0]])
    assert lsgan_loss(pred, True).item() == pytest.approx((0.25 + 0.25 + 1 + 1) / 4)  # 0.625
    assert lsgan_loss(pred, False).item() == pytest.approx((0.25 + 2.25 + 0 + 4) / 4)  # 1.625
    d = discriminator_loss(torch.tensor([0.5, 1.0]), torch.tensor([0.5, -1.0]))
    assert d.item() == pytest.approx(0.5 * ((0.25 + 0) / 2 + (0.25 + 1) / 2))  # 0.375
    rec, orig = torch.tensor([1.0, 2.0, 3.0, -3.0]), torch.ones(4)
    assert cycle_loss(rec, orig).item() == pytest.approx(10 * (0 + 1 + 2 + 4) / 4)  # 17.5
    assert cycle_loss(rec, orig, lam=2.0).item() == pytest.approx(3.5)
    assert identity_loss(rec, orig).item() == pytest.approx(0.5 * 10 * 7 / 4)  # 8.75
    x = torch.tensor([2.0], requires_grad=True)
    lsgan_loss(x, True).backward()
    assert x.grad.item() == pytest.approx(2.0)  # d/dx (x - 1)^2 at 2


def test_lr_constant_then_linear_to_zero():
    f = [trainer.lr_factor(i, 10, 6) for i in range(11)]
    assert f[:6] == [1.0] * 6
    assert f[6:] == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0])


# ---------------------------------------------------------------- pool


def test_image_pool_fills_then_swaps_with_probability_half():
    pool = ImagePool(50, np.random.default_rng(7))
    for i in range(50):  # filling: every image comes back as itself and is stored
        out = pool.query(torch.full((1, 1, 2, 2), float(i)))
        assert out.flatten()[0].item() == i
    assert len(pool) == 50
    stored = [im.flatten()[0].item() for im in pool.images]
    assert stored == list(range(50))
    mirror = np.random.default_rng(7)  # the same draws, replayed by hand
    news, swaps = 0, 0
    for j in range(50, 250):
        out = pool.query(torch.full((1, 1, 2, 2), float(j))).flatten()[0].item()
        if mirror.random() < 0.5:
            assert out == j
            news += 1
        else:
            k = int(mirror.integers(0, 50))
            assert out == stored[k]
            stored[k] = j
            swaps += 1
        assert [im.flatten()[0].item() for im in pool.images] == stored
    assert 70 < news < 130 and news + swaps == 200
    assert len(pool) == 50
    # nothing is lost or duplicated: the pool plus everything returned is everything given
    state = pool.state_dict()
    again = ImagePool(1)
    again.load_state_dict(state)
    a = pool.query(torch.full((4, 1, 2, 2), 999.0))
    b = again.query(torch.full((4, 1, 2, 2), 999.0))
    assert torch.equal(a, b)  # a restored pool draws as the original


# ---------------------------------------------------------------- networks


@pytest.mark.parametrize("h,w", [(64, 64), (48, 80), (36, 52)])
def test_generator_keeps_size_and_range(h, w):
    g = ResnetGenerator(3, 3, ngf=8, n_blocks=3)
    y = g(torch.randn(1, 3, h, w))
    assert y.shape == (1, 3, h, w)
    assert y.abs().max() <= 1.0
    mods = list(g.model)
    assert sum(isinstance(m, ResidualBlock) for m in mods) == 3
    ups = [m for m in mods if isinstance(m, torch.nn.ConvTranspose2d)]
    downs = [m for m in mods if isinstance(m, torch.nn.Conv2d) and m.stride == (2, 2)]
    assert len(ups) == 2 and len(downs) == 2
    assert isinstance(mods[0], torch.nn.ReflectionPad2d) and mods[1].kernel_size == (7, 7) and mods[1].out_channels == 8
    assert isinstance(mods[-1], torch.nn.Tanh) and mods[-2].kernel_size == (7, 7)


def test_patchgan_is_70x70_with_30x30_map_at_256():
    d = PatchDiscriminator(3, ndf=4)
    assert receptive_field(d) == 70
    x = torch.randn(1, 3, 256, 256, requires_grad=True)
    y = d(x)
    assert y.shape == (1, 1, 30, 30)
    # the pixels one score sees: a 70 x 70 window (instance norm, which pools over the whole
    # image, taken out for this: it spreads every score's gradient over all pixels)
    local = torch.nn.Sequential(*[torch.nn.Identity() if isinstance(m, torch.nn.InstanceNorm2d) else m for m in d.model])
    local(x)[0, 0, 15, 15].backward()
    rows, cols = torch.nonzero(x.grad[0].abs().sum(0), as_tuple=True)
    assert rows.max() - rows.min() + 1 == 70 and cols.max() - cols.min() + 1 == 70
    convs = [m for m in d.model if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4, 8, 16, 32, 1]
    assert isinstance(d.model[1], torch.nn.LeakyReLU) and d.model[1].negative_slope == 0.2  # no norm on C64
    assert sum(isinstance(m, torch.nn.InstanceNorm2d) for m in d.model) == 3


# ---------------------------------------------------------------- training


def test_train_checkpoint_and_resume_on_the_command_line(tmp_path):
    a = make_dataset(tmp_path / "A", bags=2)  # an xraybag dataset (64 x 48 pseudo-colour images)
    b = image_folder(tmp_path / "B", 3)
    run_dir = tmp_path / "run"
    opts = [x for k, v in FAST.items() for x in ("--opt", f"{k}={v}")]
    r = run("train", "cyclegan", "--data", a, "--target", b, "-o", run_dir, *opts,
            "--opt", "iterations=3", "--opt", "checkpoint_every=2", "-q")
    assert r.exit_code == 0, r.output
    assert r.output.strip() == str(run_dir / "weights.pt")
    log = [json.loads(x) for x in (run_dir / "train_log.jsonl").read_text().splitlines()]
    assert [x["iter"] for x in log] == [1, 2, 3]
    assert all(np.isfinite(x["G"]) and x["cycle_A"] > 0 for x in log)
    ckpt = torch.load(run_dir / "checkpoint.pt", weights_only=False)
    assert ckpt["iteration"] == 3 and ckpt["kind"] == trainer.KIND and ckpt["config"]["channels"] == 3
    assert len(ckpt["pool_A"]["images"]) == 3
    rec = json.loads((run_dir / "learn.json").read_text())
    assert rec["learner"] == "cyclegan" and rec["target"] == str(b.resolve())

    r = run("train", "cyclegan", "--data", a, "--target", b, "-o", run_dir, *opts, "-q")  # again, no --resume
    one_line_error(r, "already holds a training checkpoint")
    assert json.loads((run_dir / "learn.json").read_text()) == rec  # the refused run left the record alone
    r = run("train", "cyclegan", "--data", a, "-o", run_dir, "--resume", "--opt", "iterations=5", "-q")
    assert r.exit_code == 0, r.output  # --target and the options come from learn.json
    log = [json.loads(x) for x in (run_dir / "train_log.jsonl").read_text().splitlines()]
    assert [x["iter"] for x in log] == [1, 2, 3, 4, 5]
    w = torch.load(run_dir / "weights.pt", weights_only=False)
    assert w["iteration"] == 5 and set(w) >= {"G_AB", "G_BA", "config"} and "D_A" not in w


@pytest.mark.parametrize("extra", [{}, {"residual": True, "pointwise": 4, "pixel_gan": 1.0, "pixel_bag": True,
                                       "pixel_pool": 3000}], ids=["paper", "pixel_pool"])
def test_resume_after_an_interruption_equals_an_uninterrupted_run(tmp_path, monkeypatch, extra):
    a, b = image_folder(tmp_path / "A", 2), image_folder(tmp_path / "B", 3, seed=1)
    opts = dict(FAST, iterations=4, checkpoint_every=2, n_blocks=1, **extra)
    straight = CycleGANSynthesizer(**opts).train(a, b, tmp_path / "straight", device="cpu", progress=False)
    real_step, calls = trainer.step, []

    def interrupted(*args, **kw):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(1)
        return real_step(*args, **kw)

    monkeypatch.setattr(trainer, "step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        CycleGANSynthesizer(**opts).train(a, b, tmp_path / "cut", device="cpu", progress=False)
    assert torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=False)["iteration"] == 2
    monkeypatch.setattr(trainer, "step", real_step)
    resumed = CycleGANSynthesizer(**opts).train(a, b, tmp_path / "cut", device="cpu", resume=True, progress=False)
    s, r = torch.load(straight, weights_only=False), torch.load(resumed, weights_only=False)
    assert r["iteration"] == s["iteration"] == 4
    for key in ("G_AB", "G_BA"):
        for name, t in s[key].items():
            torch.testing.assert_close(r[key][name], t, rtol=1e-5, atol=1e-6, msg=f"{key}.{name}")


def test_training_learns_the_targets_colours(tmp_path):
    """A: grey-blue bags; B: the same kind of images under an orange colour table. After 60
    iterations the translated A images' mean colour has moved most of the way to B's."""
    a = make_dataset(tmp_path / "A", bags=8)
    rng = np.random.default_rng(5)
    b = tmp_path / "B"
    b.mkdir()
    for i, p in enumerate(sorted((a / "images").glob("*.png"))):
        x = np.clip(np.asarray(Image.open(p)).astype(float) + rng.normal(0, 8, (48, 64, 3)), 0, 255)
        Image.fromarray(x.astype(np.uint8)).save(p)
        Image.fromarray((x * [1.0, 0.7, 0.35]).astype(np.uint8)).save(b / f"{i}.png")
    w = CycleGANSynthesizer(**dict(FAST, n_blocks=1), iterations=60).train(a, b, tmp_path / "run", device="cpu", progress=False)
    synth = CycleGANSynthesizer(weights=w)
    synth.check()
    synth.synthesize(a, tmp_path / "out")

    def mean_rgb(files):
        return np.mean([np.asarray(Image.open(f)).reshape(-1, 3).mean(0) for f in files], 0)

    names = sorted(p.name for p in (a / "images").glob("*.png"))
    src, tgt = mean_rgb(a / "images" / n for n in names), mean_rgb(sorted(b.glob("*.png")))
    out = mean_rgb(tmp_path / "out" / "images" / n for n in names)
    # green and blue: B is 65 and 147 levels below A; red is the same (an untrained generator's
    # mid-grey output is far from it)
    assert np.abs(out - tgt).max() < 20, (src, tgt, out)
    assert abs(out[2] - tgt[2]) < 0.15 * abs(src[2] - tgt[2]), (src, tgt, out)


# ---------------------------------------------------------------- translation


def test_translation_keeps_labels_and_sizes(tmp_path, weights):
    data = odd_dataset(tmp_path / "A")
    out = tmp_path / "out"
    r = run("synthesize", "cyclegan", "--data", data, "-o", out, "--opt", f"weights={weights}")
    assert r.exit_code == 0, r.output
    before = (data / "annotations.json").read_bytes()
    coco = json.loads((out / "annotations.json").read_text())
    notes = [im.pop("synthetic") for im in coco["images"]]
    assert notes[0]["method"] == "cyclegan" and notes[0]["direction"] == "AtoB" and notes[0]["source_image"] == 1
    assert notes[0]["raw_translated"] is False and notes[0]["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert notes[1]["earlier"] == {"method": "tip"}
    coco["images"][1]["synthetic"] = notes[1]["earlier"]
    assert json.dumps(coco).encode() == before  # byte-identical but for the provenance notes
    for im in coco["images"]:
        src, new = np.asarray(Image.open(data / im["file_name"])), np.asarray(Image.open(out / im["file_name"]))
        assert new.shape == src.shape == (38, 50, 3)
        assert np.abs(new.astype(int) - src.astype(int)).mean() > 1  # translated
        assert (out / im["labels"]).read_bytes() == (data / im["labels"]).read_bytes()
        for rel in im["raw"].values():
            assert (out / rel).read_bytes() == (data / rel).read_bytes()
    lines = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert lines[0]["files"]["images/000000_top.png"] == hashlib.sha256((out / "images/000000_top.png").read_bytes()).hexdigest()
    ds = DetectionDataset(out, split="all")
    assert len(ds) == 2 and ds[0].boxes.tolist() == [[10.0, 5.0, 30.0, 20.0]]

    back = tmp_path / "back"
    r = run("synthesize", "cyclegan", "--data", data, "-o", back, "--opt", f"weights={weights}",
            "--opt", "direction=BtoA", "--opt", "raw=drop")
    assert r.exit_code == 0, r.output
    coco = json.loads((back / "annotations.json").read_text())
    assert not (back / "raw").exists() and all("raw" not in im for im in coco["images"])
    assert coco["images"][0]["synthetic"]["raw"] == "dropped"
    assert "raw/000000_top_low.tiff" not in json.loads((back / "manifest.jsonl").read_text().splitlines()[0])["files"]
    assert not np.array_equal(np.asarray(Image.open(back / "images/000000_top.png")),
                              np.asarray(Image.open(out / "images/000000_top.png")))
    assert (back / "labels/000001_top.png").read_bytes() == (data / "labels/000001_top.png").read_bytes()


# ---------------------------------------------------------------- errors


def test_one_line_errors_write_nothing(tmp_path, weights):
    a = image_folder(tmp_path / "A", 2)
    grey = image_folder(tmp_path / "G", 2, grey=True)
    small = image_folder(tmp_path / "S", 2, h=20, w=20)
    run_dir = tmp_path / "run"
    fast = [x for k, v in FAST.items() for x in ("--opt", f"{k}={v}")]
    one_line_error(run("train", "cyclegan", "--data", a, "-o", run_dir, *fast), "needs --target")
    one_line_error(run("train", "cyclegan", "--data", a, "--target", grey, "-o", run_dir, *fast), "3 channels and --target's 1")
    one_line_error(run("train", "cyclegan", "--data", a, "--target", small, "-o", run_dir, *fast),
                   "smaller than the training crop 32 x 32")
    one_line_error(run("train", "cyclegan", "--data", a, "--target", a, "-o", run_dir, *fast, "--opt", "content=1.5"),
                   "option content: 1.5")
    one_line_error(run("train", "cyclegan", "--data", a, "--target", tmp_path / "nope", "-o", run_dir, *fast), "not a folder")
    one_line_error(run("train", "cyclegan", "--data", a, "--target", a, "-o", run_dir, "--opt", "preset=huge"), "option preset")
    one_line_error(run("train", "atss", "--data", a, "--target", a, "-o", run_dir), "--target is for trainable synthesizers")
    one_line_error(run("train", "tip", "--data", a, "-o", run_dir), "is a synthesizer; use 'xraybag learn synthesize'")
    assert not run_dir.exists()

    data = odd_dataset(tmp_path / "D")
    out = tmp_path / "out"
    not_ours = tmp_path / "other.pt"
    torch.save({"model": {}, "epoch": 1}, not_ours)
    one_line_error(run("synthesize", "cyclegan", "--data", data, "-o", out, "--opt", f"weights={not_ours}"),
                   "is not a cyclegan weights file")
    text = tmp_path / "text.pt"
    text.write_text("hello")
    one_line_error(run("synthesize", "cyclegan", "--data", data, "-o", out, "--opt", f"weights={text}"), "cannot read")
    one_line_error(run("synthesize", "cyclegan", "--data", data, "-o", out), "option weights is required")
    one_line_error(run("synthesize", "cyclegan", "--data", data, "-o", out, "--opt", f"weights={tmp_path / 'x.pt'}"),
                   "does not exist")
    state = torch.load(weights, weights_only=False)
    state["config"] = dict(state["config"], channels=1)
    g = ResnetGenerator(1, 1, state["config"]["ngf"], state["config"]["n_blocks"]).state_dict()
    grey_w = tmp_path / "grey.pt"
    torch.save(dict(state, G_AB=g, G_BA=g), grey_w)
    one_line_error(run("synthesize", "cyclegan", "--data", data, "-o", out, "--opt", f"weights={grey_w}"),
                   "has 3 channels; the weights translate images of 1")
    one_line_error(run("eval", "cyclegan", "--weights", weights, "--data", data), "use 'xraybag learn synthesize'")
    one_line_error(run("synthesize", "cyclegan", "--data", data, "-o", out, "--opt", f"weights={weights}",
                       "--opt", "tile=8"), "option tile: 8")
    # a path in annotations.json that leaves the dataset folder: not read, and nothing written beside it
    escape = tmp_path / "E" / "in"
    shutil.copytree(data, escape)
    coco = json.loads((escape / "annotations.json").read_text())
    coco["images"][0]["file_name"] = "../../D/images/000000_top.png"
    (escape / "annotations.json").write_text(json.dumps(coco))
    one_line_error(run("synthesize", "cyclegan", "--data", escape, "-o", out, "--opt", f"weights={weights}"),
                   "images[0] (id 1): file_name '../../D/images/000000_top.png' leaves the dataset folder")
    one_line_error(run("train", "cyclegan", "--data", escape, "--target", a, "-o", run_dir, *fast),
                   "--data: path '../../D/images/000000_top.png' leaves the dataset folder")
    assert not out.exists() and not run_dir.exists()


def test_tiled_translation_blends_windows_by_hand():
    """translate_tiled: windows half a window apart, the last at the edge; each pixel the
    Hann-weighted mean of the windows over it, each window translated on its own."""
    import torch

    from xraybag.learners.cyclegan.synth import hann_weights, tile_starts, translate_tiled

    assert tile_starts(10, 4) == [0, 2, 4, 6]
    assert tile_starts(11, 4) == [0, 2, 4, 6, 7]
    assert tile_starts(4, 4) == [0]
    # sin^2(pi (i + 0.5) / 4): 0.1464, 0.8536, 0.8536, 0.1464
    assert np.allclose(hann_weights(4), [0.14644661, 0.85355339, 0.85355339, 0.14644661])

    class WindowMean(torch.nn.Module):  # a "generator" whose output depends on the whole window
        def forward(self, x):
            return x.mean(dim=(2, 3), keepdim=True).expand_as(x)

    rng = np.random.default_rng(0)
    img = rng.uniform(0.2, 0.8, (8, 12, 1)).astype(np.float32)
    out = translate_tiled(WindowMean(), img, "cpu", 4)
    # mean in [-1, 1] and back is the mean in [0, 1]
    m = {(y, x): img[y : y + 4, x : x + 4].mean() for y in (0, 2, 4) for x in (0, 2, 4, 6, 8)}
    w = hann_weights(4)
    assert out[0, 0, 0] == pytest.approx(m[0, 0], abs=1e-6)  # one window covers the corner
    # row 0 lies in the windows starting at y = 0 only; column 2 in those starting at x = 0 and 2
    want = (w[2] * m[0, 0] + w[0] * m[0, 2]) / (w[2] + w[0])
    assert out[0, 2, 0] == pytest.approx(want, abs=1e-6)
    # pixel (3, 5): rows of windows y = 0 (position 3) and 2 (position 1); columns x = 2 (3), 4 (1)
    num = sum(w[3 - y] * w[5 - x] * m[y, x] for y in (0, 2) for x in (2, 4))
    den = sum(w[3 - y] * w[5 - x] for y in (0, 2) for x in (2, 4))
    assert out[3, 5, 0] == pytest.approx(num / den, abs=1e-6)
    # an identity generator gives the image back; tile 0 or a tile as large as the image: one pass
    ident = torch.nn.Identity()
    assert np.allclose(translate_tiled(ident, img, "cpu", 4), img, atol=1e-6)
    whole = translate_tiled(WindowMean(), img, "cpu", 0)
    assert np.allclose(whole, img.mean(), atol=1e-6)
    assert np.allclose(translate_tiled(WindowMean(), img, "cpu", 12), whole, atol=1e-6)


def test_warmup_trains_the_generators_to_give_back_their_input(tmp_path):
    """warmup=2: the first two iterations train only the generators, on L1 to their input (the
    discriminators keep their initial weights, the pools stay empty); then the game starts."""
    a, b = image_folder(tmp_path / "A", 2), image_folder(tmp_path / "B", 3, seed=1)
    opts = dict(FAST, iterations=4, checkpoint_every=2, n_blocks=1, warmup=2)
    syn = CycleGANSynthesizer(**opts)
    real_warmup, seen = trainer.warmup_step, []

    def spy(nets, opt_g, real_a, real_b, lam):
        with torch.no_grad():  # the loss by hand, before the step
            want = {k: lam * (float((nets[k](real_a) - real_a).abs().mean()) + float((nets[k](real_b) - real_b).abs().mean()))
                    for k in ("G_AB", "G_BA")}
        got = real_warmup(nets, opt_g, real_a, real_b, lam)
        seen.append((want, got))
        if len(seen) == 2:  # the end of the warm-up: the discriminators are untouched so far
            torch.manual_seed(0)
            fresh = trainer.build(dict(syn_cfg))
            for net in fresh.values():
                trainer.init_weights(net)
            for k in ("D_A", "D_B"):
                for name, t in fresh[k].state_dict().items():
                    assert torch.equal(nets[k].state_dict()[name], t), (k, name)
        return got

    syn_cfg = {"channels": 3, "ngf": FAST["ngf"], "ndf": FAST["ndf"], "n_blocks": 1}
    import unittest.mock as um

    with um.patch.object(trainer, "warmup_step", spy):
        syn.train(a, b, tmp_path / "run", device="cpu", progress=False)
    assert len(seen) == 2
    for want, got in seen:
        for k in ("G_AB", "G_BA"):
            assert got[f"warmup_{k}"] == pytest.approx(want[k], rel=1e-5)
    log = [json.loads(x) for x in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [("warmup_G_AB" in x, "cycle_A" in x) for x in log] == [(True, False)] * 2 + [(False, True)] * 2
    one_line_error(run("train", "cyclegan", "--data", a, "--target", b, "-o", tmp_path / "r2",
                       *[x for k, v in dict(FAST, iterations=3, warmup=3).items() for x in ("--opt", f"{k}={v}")]),
                   "option warmup: 3 iterations leave none")


def test_residual_generator_keeps_the_colour_instance_norm_discards():
    """The paper's generator sees a flat crop as zeros after its first instance norm, so two flat
    crops of different colours come out the same; the residual one adds its change to the input
    (exactly the input when its last convolution is zero)."""
    torch.manual_seed(0)
    plain = init_weights(ResnetGenerator(3, 3, ngf=8, n_blocks=1)).eval()
    res = init_weights(ResnetGenerator(3, 3, ngf=8, n_blocks=1, residual=True)).eval()
    # the same faint texture on two colours: the first convolution is linear, so its feature maps
    # differ by a constant per map, which instance norm removes
    texture = 0.05 * torch.rand(1, 3, 16, 16)
    orange = texture + torch.tensor([0.8, 0.3, -0.6]).view(1, 3, 1, 1)
    blue = texture + torch.tensor([-0.7, -0.5, 0.4]).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(plain(orange), plain(blue), atol=1e-4)  # the colour is gone
        x = torch.rand(1, 3, 20, 24) * 2 - 1
        assert torch.equal(res(x), x)  # initialised as the identity (last convolution zero)
        assert torch.equal(res(orange), orange) and torch.equal(res(blue), blue)
        last = [m for m in res.modules() if isinstance(m, torch.nn.Conv2d)][-1]
        last.weight.normal_(0.0, 0.02)  # trained: a change added to the input, the colours kept
        assert (res(orange) - res(blue)).mean(dim=(0, 2, 3)).sub(orange.mean(dim=(0, 2, 3)) - blue.mean(dim=(0, 2, 3))).abs().max() < 0.2
    with pytest.raises(ValueError):
        ResnetGenerator(3, 1, residual=True)


def test_content_crops_hold_the_bag_not_the_belt():
    """A 50 x 50 px bag on a 100 x 100 px belt: uniform 32 px crops are about half bag, and
    content=0.9 crops (up to 16 windows drawn) nearly all bag; a crop of the bare belt still comes
    back (the fullest window, here any)."""
    rng = np.random.default_rng(0)
    img = np.full((100, 100, 3), [0.95, 0.96, 1.0], np.float32)
    img[25:75, 25:75] = rng.uniform(0.2, 0.6, (50, 50, 3))
    belt = trainer.background_colour(img)
    assert np.allclose(belt, [0.95, 0.96, 1.0])

    def shares(content):
        out = []
        for i in range(200):
            t = trainer.crop(img, 32, np.random.default_rng([7, i]), content)
            win = (t[0].numpy().transpose(1, 2, 0) + 1.0) / 2.0
            out.append(trainer.content_share(win, belt))
        return np.array(out)

    uniform, full = shares(0.0), shares(0.9)
    assert uniform.mean() < 0.55 and (uniform < 0.5).mean() > 0.4
    assert full.mean() > 0.9 and (full >= 0.9).mean() > 0.8 and full.min() > 0.6
    # uniform crops draw exactly as before the option existed: one window from the same rng
    r1, r2 = np.random.default_rng(3), np.random.default_rng(3)
    y, x = int(r2.integers(0, 69)), int(r2.integers(0, 69))
    flip = r2.random() < 0.5
    want = img[y:y + 32, x:x + 32][:, ::-1] if flip else img[y:y + 32, x:x + 32]
    assert torch.equal(trainer.crop(img, 32, r1), torch.from_numpy(np.ascontiguousarray(want.transpose(2, 0, 1))).unsqueeze(0) * 2 - 1)
    bare = np.full((64, 64, 3), 0.9, np.float32)
    assert trainer.crop(bare, 32, np.random.default_rng(0), 0.9).shape == (1, 3, 32, 32)


# ---------------------------------------------------------------- pixel size


def with_pixel_mm(root: Path, mm: float) -> Path:
    coco = json.loads((root / "annotations.json").read_text())
    for im in coco["images"]:
        im["pixel_mm"] = mm
    (root / "annotations.json").write_text(json.dumps(coco))
    return root


def test_the_target_is_learnt_at_the_datas_pixel_size(tmp_path, monkeypatch):
    """A at 2 mm pixels, B at 1.6 mm: B's 64 x 48 images are cropped from a 51 x 38 resampling (its
    objects at A's size in pixels), A's as stored; the weights record the scale."""
    a = with_pixel_mm(make_dataset(tmp_path / "A", bags=2), 2.0)
    b = with_pixel_mm(make_dataset(tmp_path / "B", bags=2), 1.6)
    seen = []
    real_crop = trainer.crop

    def spy(img, *args, **kw):
        seen.append(img)
        return real_crop(img, *args, **kw)

    monkeypatch.setattr(trainer, "crop", spy)
    w = CycleGANSynthesizer(**FAST, iterations=2).train(a, b, tmp_path / "run", device="cpu", progress=False)
    cfg = torch.load(w, weights_only=False)["config"]
    assert cfg["target_scale"] == pytest.approx(0.8) and cfg["pixel_mm"] == 2.0
    assert [x.shape for x in seen] == [(48, 64, 3), (38, 51, 3)] * 2  # A as stored, B resampled
    # resampling keeps the mean colour (the boxes cover 0.64 of the pixels they did): each B crop
    # came from an image whose mean is one of B's images' means
    means = [np.asarray(Image.open(p)).reshape(-1, 3).mean(0) / 255 for p in sorted((b / "images").glob("*.png"))]
    for x in seen[1::2]:
        assert min(np.abs(x.reshape(-1, 3).mean(0) - m).max() for m in means) < 0.01
    seen.clear()
    CycleGANSynthesizer(**FAST, iterations=1, target_scale=1.0).train(a, b, tmp_path / "native", device="cpu",
                                                                        progress=False)
    assert [x.shape for x in seen] == [(48, 64, 3)] * 2  # as stored when asked
    seen.clear()
    folder = image_folder(tmp_path / "F", 2)  # a plain folder records no pixel size: as stored
    w = CycleGANSynthesizer(**FAST, iterations=1).train(a, folder, tmp_path / "folder", device="cpu", progress=False)
    assert torch.load(w, weights_only=False)["config"]["target_scale"] == 1.0
    assert [x.shape for x in seen] == [(48, 64, 3), (40, 44, 3)]
    fast = [x for k, v in FAST.items() for x in ("--opt", f"{k}={v}")]
    one_line_error(run("train", "cyclegan", "--data", a, "--target", b, "-o", tmp_path / "r", *fast,
                       "--opt", "target_scale=0.5"), "(32 x 24 px resampled by 0.5), smaller than the training crop 32")
    one_line_error(run("train", "cyclegan", "--data", a, "--target", b, "-o", tmp_path / "r", *fast,
                       "--opt", "target_scale=20"), "option target_scale: 20.0 must lie in 0..16")
    assert not (tmp_path / "r").exists()
    # resuming at another scale is refused
    one_line_error(run("train", "cyclegan", "--data", a, "--target", b, "-o", tmp_path / "run", "--resume", *fast,
                       "--opt", "iterations=3", "--opt", "target_scale=1"), "trained with target_scale=0.8")


def test_translation_runs_at_the_learnt_pixel_size_and_keeps_the_image_size(tmp_path, monkeypatch):
    """B -> A on B's 1.6 mm images: the generator sees them resampled to A's 2 mm pixels and the
    result is resampled back to 64 x 48; A -> B on A's images runs as stored."""
    from xraybag.learners.cyclegan import synth

    a = with_pixel_mm(make_dataset(tmp_path / "A", bags=1), 2.0)
    b = with_pixel_mm(make_dataset(tmp_path / "B", bags=1), 1.6)
    w = CycleGANSynthesizer(**FAST, iterations=1).train(a, b, tmp_path / "run", device="cpu", progress=False)
    shapes = []

    def same(gen, img, device, tile):  # a generator that gives back its input
        shapes.append(img.shape)
        return img

    monkeypatch.setattr(synth, "translate_tiled", same)
    for data, direction, shape, scale in ((b, "BtoA", (38, 51, 3), 0.8), (a, "AtoB", (48, 64, 3), 1.0)):
        shapes.clear()
        out = tmp_path / f"out_{direction}"
        s = CycleGANSynthesizer(weights=w, direction=direction)
        s.check()
        s.synthesize(data, out)
        assert shapes == [shape] * 2
        coco = json.loads((out / "annotations.json").read_text())
        assert [im["synthetic"]["resampled"] for im in coco["images"]] == [pytest.approx(scale)] * 2
        for im in coco["images"]:
            src = np.asarray(Image.open(data / im["file_name"])).astype(int)
            new = np.asarray(Image.open(out / im["file_name"])).astype(int)
            assert new.shape == src.shape == (48, 64, 3)
            if scale == 1.0:
                assert np.array_equal(new, src)  # no resampling, an identity generator: the same image
            else:  # down and up again: the same away from the boxes' edges
                assert np.median(np.abs(new - src)) <= 1 and np.abs(new - src).mean() < 12


def test_pointwise_term_lets_the_change_depend_on_the_absolute_colour():
    """Two crops with the same texture on a light and a dark organic colour: the residual
    generator's change is the same for both (its instance norms see only the texture), so it
    cannot darken the light one and keep the dark one; with the pointwise term it learns to."""
    torch.manual_seed(0)
    texture = 0.05 * torch.rand(1, 3, 16, 16)
    light = texture + torch.tensor([0.8, 0.4, 0.0]).view(1, 3, 1, 1)
    dark = texture + torch.tensor([0.2, -0.4, -0.8]).view(1, 3, 1, 1)
    x = torch.cat([light, dark])
    want = torch.cat([dark, dark])  # another colour table draws both as the dark one
    fits = {}
    for pointwise in (0, 16):
        g = init_weights(ResnetGenerator(3, 3, ngf=8, n_blocks=1, residual=True, pointwise=pointwise))
        with torch.no_grad():
            assert torch.equal(g(x), x)  # both start as the identity
        opt = torch.optim.Adam(g.parameters(), lr=2e-3)
        for _ in range(150):
            opt.zero_grad()
            loss = (g(x) - want).abs().mean()
            loss.backward()
            opt.step()
        g.eval()
        with torch.no_grad():
            change = g.model(x)
            if pointwise == 0:  # the same change for both colours, trained or not
                assert torch.allclose(change[0], change[1], atol=1e-5)
            fits[pointwise] = float((g(x) - want).abs().mean())
    # without the term one change serves both colours (0.6-0.8 apart per channel, the clamp at -1
    # helps a little): about a third of the difference stays; with it, almost none
    assert fits[0] > 0.2 and fits[16] < 0.08, fits
    with pytest.raises(ValueError, match="needs a residual generator"):
        ResnetGenerator(3, 3, ngf=8, n_blocks=1, pointwise=4)


def test_pixel_discriminator_judges_each_pixels_colour_alone(tmp_path):
    """The 1x1 discriminator's score of a pixel depends on that pixel's colour only (shuffling the
    pixels shuffles the scores); trained on a light organic (fake) against the target's saturated
    one (real), it tells them apart and its loss pushes the light colour towards the saturated one;
    in training it is updated with the others and checkpointed, and a resume with another
    ``pixel_gan`` is refused."""
    torch.manual_seed(0)
    d = init_weights(PixelDiscriminator(3, 8))
    x = torch.rand(1, 3, 12, 12) * 2 - 1
    perm = torch.randperm(144)
    with torch.no_grad():
        shuffled = d(x.flatten(2)[..., perm].view(1, 3, 12, 12)).flatten(2)
        torch.testing.assert_close(shuffled, d(x).flatten(2)[..., perm])

    def texture(n: int) -> torch.Tensor:
        return 0.05 * torch.randn(n, 3, 16, 16)

    light = torch.tensor([0.9, 0.5, 0.1]).view(1, 3, 1, 1)  # a light, weakly saturated organic
    deep = torch.tensor([0.7, -0.1, -0.7]).view(1, 3, 1, 1)  # the target's saturated one
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-3, betas=(0.5, 0.999))
    for _ in range(200):
        opt_d.zero_grad()
        discriminator_loss(d(deep + texture(2)), d(light + texture(2))).backward()
        opt_d.step()
    fake = (light + texture(1)).requires_grad_(True)
    lsgan_loss(d(fake), True).backward()
    push = -fake.grad.mean((0, 2, 3))  # where the generator's loss sends the light organic's colour
    assert torch.cosine_similarity(push, (deep - light).flatten(), dim=0) > 0.8, push
    with torch.no_grad():
        assert float(d(deep + texture(4)).mean()) > 0.8 and float(d(light + texture(4)).mean()) < 0.2

    a, b = image_folder(tmp_path / "A", 2), image_folder(tmp_path / "B", 2, seed=1)
    opts = dict(FAST, iterations=2, n_blocks=1, residual=True, pointwise=8, pixel_gan=1.0)
    CycleGANSynthesizer(**opts).train(a, b, tmp_path / "run", device="cpu", progress=False)
    log = [json.loads(x) for x in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert all(x["P_A"] > 0 and x["P_B"] > 0 and x["px_AB"] > 0 for x in log)
    assert {"P_A", "P_B"} <= set(torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False))
    nets, d_params, opt_g, opt_d = tiny_game(PIXEL_CFG)
    before = {k: nets[k].model[0].weight.detach().clone() for k in ("P_A", "P_B")}
    pools = {k: ImagePool(0) for k in "AB"}
    crops = [0.05 * torch.randn(1, 3, 32, 32) + c for c in (light, deep)]  # a PatchGAN needs 32 px
    trainer.step(nets, opt_g, opt_d, pools, d_params, *crops, 10.0, 0.5, 1.0)
    assert all(not torch.equal(nets[k].model[0].weight, before[k]) for k in before)  # the pixel Ds learn
    with pytest.raises(XraybagError, match="trained with pixel_gan=1.0"):
        CycleGANSynthesizer(**dict(opts, pixel_gan=0.5, iterations=3)).train(a, b, tmp_path / "run", device="cpu",
                                                                            resume=True, progress=False)
    with pytest.raises(XraybagError, match="option pixel_gan: -1"):
        CycleGANSynthesizer(**dict(opts, pixel_gan=-1.0)).check()


def test_pixel_bag_confines_the_pixel_game_to_the_bag(tmp_path):
    """``foreground`` marks a crop's pixels off the belt colour; with ``pixel_bag`` the pixel
    discriminators' terms are means over those pixels only: the belt's pixels, however many and
    whatever their colour, neither enter the generator's pixel loss nor get a gradient from it,
    while a bag pixel does; the option needs ``pixel_gan``."""
    t, mask = belt_crop()
    assert mask.shape == (1, 1, 32, 32) and int(mask.sum()) == 12 * 26
    assert float(mask[0, 0, 10, 10]) == 1.0 and float(mask[0, 0, 0, 0]) == 0.0
    torch.manual_seed(0)
    d = init_weights(PixelDiscriminator(3, 8))
    pred = d(t).detach()
    want = float(((pred - 1.0) ** 2)[mask.bool().expand_as(pred)].mean())
    assert abs(float(trainer.masked_lsgan(pred, True, mask)) - want) < 1e-6
    assert float(trainer.masked_lsgan(pred, True, torch.zeros_like(mask))) == 0.0
    fake = t.clone().requires_grad_(True)
    trainer.masked_lsgan(d(fake), True, mask).backward()
    grad = fake.grad.abs().sum(1)[0]
    assert float(grad[mask[0, 0] == 0].max()) == 0.0 and float(grad[mask[0, 0] == 1].min()) > 0.0
    # in a training step the belt's colour does not move the pixel terms: a crop whose belt is
    # recoloured gives the same px losses as long as the masks stay those of the bag
    recoloured = t.clone()
    recoloured[:, :, mask[0, 0] == 0] = -0.5
    px = []
    for a, masks in ((t, (mask, mask)), (recoloured, (mask, mask)), (recoloured, None)):
        torch.manual_seed(1)
        nets, d_params, opt_g, opt_d = tiny_game(PIXEL_CFG)
        pools = {k: ImagePool(0) for k in "AB"}
        px.append(trainer.step(nets, opt_g, opt_d, pools, d_params, a, t, 10.0, 0.5, 1.0, masks))
    assert px[0]["P_A"] > 0 and px[0]["P_A"] == px[1]["P_A"] and px[0]["px_BA"] == px[1]["px_BA"]
    assert px[2]["P_A"] != px[1]["P_A"]  # unconfined, P_A judges the recoloured belt too
    with pytest.raises(XraybagError, match="option pixel_bag: true needs pixel_gan"):
        CycleGANSynthesizer(**dict(FAST, pixel_bag=True)).check()


def test_pixel_pool_keeps_a_history_of_pixels():
    """``PixelPool`` keeps the last ``size`` pixels added, draws uniformly from them (replayed with
    its seeded generator) and restores from its state; in a training step with ``pixel_bag`` it gets
    exactly the bag's pixels of the real crop and of the fake made from the other set's crop, so the
    pixel discriminators never see the belt; the option needs ``pixel_gan``."""
    pool = PixelPool(5, 2, np.random.default_rng(7))
    rows = torch.arange(20, dtype=torch.float32).repeat(2, 1).t()  # row i is (i, i)
    pool.add(rows[:3])
    assert len(pool) == 3 and sorted(pool.data[:3, 0].tolist()) == [0, 1, 2]
    pool.add(rows[3:7])  # 0 and 1, the oldest, give way
    assert len(pool) == 5 and sorted(pool.data[:, 0].tolist()) == [2, 3, 4, 5, 6]
    pool.add(rows[7:15])  # more than it holds: the last five
    assert sorted(pool.data[:, 0].tolist()) == [10, 11, 12, 13, 14]
    draw = pool.sample(1000)
    assert draw.shape == (1, 2, 1000, 1)
    idx = np.random.default_rng(7).integers(0, 5, size=1000)
    torch.testing.assert_close(draw[0, :, :, 0].t(), pool.data[torch.as_tensor(idx)])
    assert len(set(draw[0, 0, :, 0].tolist())) == 5  # every held pixel is drawn, nothing else
    restored = PixelPool(1, 2, np.random.default_rng(0))
    restored.load_state_dict(pool.state_dict())
    torch.testing.assert_close(restored.sample(50), pool.sample(50))
    restored.add(rows[15:16])
    assert sorted(restored.data[:, 0].tolist()) == [11, 12, 13, 14, 15]  # it overwrites the oldest, 10
    with pytest.raises(ValueError, match="empty"):
        PixelPool(4, 3).sample(1)

    t, mask = belt_crop()
    mask_b = torch.zeros_like(mask)
    mask_b[..., 2:6, 2:12] = 1.0  # the other set's crop: a smaller bag
    torch.manual_seed(0)
    nets, d_params, opt_g, opt_d = tiny_game(PIXEL_CFG)
    pools = {k: ImagePool(0) for k in "AB"}
    pools.update({k: PixelPool(10_000, 3, np.random.default_rng(i)) for i, k in enumerate(trainer.PIXEL_POOLS)})
    before = nets["P_A"].model[0].weight.detach().clone()
    out = trainer.step(nets, opt_g, opt_d, pools, d_params, t, t.clone(), 10.0, 0.5, 1.0, (mask, mask_b))
    assert out["P_A"] > 0 and out["P_B"] > 0 and not torch.equal(nets["P_A"].model[0].weight, before)
    assert len(pools["px_real_A"]) == len(pools["px_fake_B"]) == 12 * 26  # A's bag, and what G_AB made of it
    assert len(pools["px_real_B"]) == len(pools["px_fake_A"]) == 4 * 10
    held = pools["px_real_A"].data[: 12 * 26]
    torch.testing.assert_close(held, torch.tensor([0.9, 0.6, 0.3]).expand_as(held) * 2 - 1)  # no belt pixel
    empty = {k: PixelPool(100, 3) for k in trainer.PIXEL_POOLS}  # crops of belt only: nothing to learn from yet
    out = trainer.step(nets, opt_g, opt_d, {**pools, **empty}, d_params, t, t.clone(), 10.0, 0.5, 1.0,
                       (torch.zeros_like(mask), mask_b))
    assert out["P_A"] == out["P_B"] == 0.0 and len(empty["px_real_A"]) == 0 and len(empty["px_real_B"]) == 40
    with pytest.raises(XraybagError, match="option pixel_pool: 100 must be 0 or, with pixel_gan > 0"):
        CycleGANSynthesizer(**dict(FAST, pixel_pool=100)).check()
    with pytest.raises(XraybagError, match="option pixel_pool: -1"):
        CycleGANSynthesizer(**dict(FAST, pixel_gan=1.0, pixel_pool=-1)).check()


def test_pixel_lr_gives_the_pixel_discriminators_their_own_learning_rate(tmp_path):
    """``pixel_lr`` puts ``P_A`` and ``P_B`` in a parameter group of their own whose learning rate
    follows the schedule times the factor (checked in the checkpoint's optimizer); a resume with
    another factor is refused; without pixel discriminators the factor is refused."""
    nets = trainer.build(PIXEL_CFG)
    one = trainer.discriminator_groups(nets)
    assert len(one) == 1 and len(one[0]["params"]) == sum(
        len(list(nets[k].parameters())) for k in ("D_A", "D_B", "P_A", "P_B"))
    two = trainer.discriminator_groups(nets, 10.0)
    assert [len(g["params"]) for g in two] == [len(list(nets["D_A"].parameters())) * 2,
                                               len(list(nets["P_A"].parameters())) * 2]
    assert two[1]["lr_scale"] == 10.0 and "lr_scale" not in two[0]
    a, b = image_folder(tmp_path / "A", 2), image_folder(tmp_path / "B", 2, seed=1)
    opts = dict(FAST, iterations=3, decay_start=1, n_blocks=1, residual=True, pointwise=4, pixel_gan=1.0,
                pixel_lr=10.0, lr=1e-3)
    CycleGANSynthesizer(**opts).train(a, b, tmp_path / "run", device="cpu", progress=False)
    groups = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["opt_D"]["param_groups"]
    last = 1e-3 * trainer.lr_factor(2, 3, 1)  # the last iteration's scheduled lr
    assert last > 0 and groups[0]["lr"] == pytest.approx(last) and groups[1]["lr"] == pytest.approx(10 * last)
    with pytest.raises(XraybagError, match="trained with pixel_lr=10.0, not 1.0"):
        CycleGANSynthesizer(**dict(opts, pixel_lr=1.0, iterations=4)).train(a, b, tmp_path / "run", device="cpu",
                                                                           resume=True, progress=False)
    with pytest.raises(XraybagError, match="option pixel_lr: 2.0 must lie in"):
        CycleGANSynthesizer(**dict(FAST, pixel_lr=2.0)).check()
    with pytest.raises(XraybagError, match="option pixel_lr: 0.0"):
        CycleGANSynthesizer(**dict(FAST, pixel_gan=1.0, pixel_lr=0.0)).check()


# ---------------------------------------------------------------- signals=raw


def raw_dataset(root: Path, scene: str, n: int = 2, gain: float = 1.0, h: int = 40, w: int = 44, seed: int = 0) -> Path:
    """An xraybag dataset of ``n`` top views whose raw low/high show a belt and two slabs (a plastic-like
    and a metal-like one, attenuation times ``gain``), each bag's scene holding the scanners of the
    built-in scene ``scene``; its images are random (signals=raw does not read them)."""
    from pycocotools import mask as mask_utils

    from xraybag.scenes.loader import builtin_dir

    scanners = yaml.safe_load((builtin_dir() / f"{scene}.yaml").read_text())["scanners"]
    for sub in ("images", "raw", "labels", "scenes", "clcxray"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images, anns = [], []
    for b in range(n):
        stem = f"{b:06d}_top"
        a_low, a_high = np.full((h, w), 0.002), np.full((h, w), 0.0015)
        a_low[6:30, 4:24] += 0.8 * gain
        a_high[6:30, 4:24] += 0.6 * gain
        a_low[12:36, 20:40] += 3.0 * gain
        a_high[12:36, 20:40] += 1.5 * gain
        for ch, att in (("low", a_low), ("high", a_high)):
            t = np.exp(-att) * (1 + 0.003 * rng.standard_normal((h, w)))
            tifffile.imwrite(root / "raw" / f"{stem}_{ch}.tiff", np.rint(np.clip(t, 0, 1) * 60000).astype(np.uint16))
        Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)).save(root / "images" / f"{stem}.png")
        Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)).save(root / "clcxray" / f"{stem}.png")
        lab = np.zeros((h, w), np.uint8)
        lab[12:36, 20:40] = 1
        Image.fromarray(lab).save(root / "labels" / f"{stem}.png")
        (root / "scenes" / f"{b:06d}.yaml").write_text(yaml.safe_dump({"seed": b, "scanners": scanners}))
        rle = mask_utils.encode(np.asfortranarray(lab))
        rle["counts"] = rle["counts"].decode()
        images.append({"id": b + 1, "file_name": f"images/{stem}.png", "width": w, "height": h, "bag": b,
                       "view": "top", "labels": f"labels/{stem}.png", "scene": f"scenes/{b:06d}.yaml",
                       "raw": {"low": f"raw/{stem}_low.tiff", "high": f"raw/{stem}_high.tiff"}})
        anns.append({"id": b + 1, "image_id": b + 1, "category_id": 1, "bbox": [20.0, 12.0, 20.0, 24.0],
                     "area": 480, "segmentation": rle, "iscrowd": 0})
    coco = {"info": {}, "categories": [{"id": 1, "name": "block"}], "images": images, "annotations": anns}
    (root / "annotations.json").write_text(json.dumps(coco))
    return root


def test_raw_units_are_log_attenuation_under_a_square_root():
    from xraybag.learners.cyclegan.rawsignals import A_MAX, from_unit, to_unit

    assert A_MAX == 9.0
    t = np.array([1.0, np.exp(-2.25), np.exp(-9.0), 1e-9, 1.2])
    np.testing.assert_allclose(to_unit(t), [0.0, 0.5, 1.0, 1.0, 0.0], atol=1e-7)  # sqrt(2.25 / 9) = 0.5
    grid = np.exp(-np.linspace(0.0, 8.9, 200))
    np.testing.assert_allclose(from_unit(to_unit(grid)), grid, rtol=2e-6)


def test_raw_signals_are_translated_written_and_coloured_by_the_other_scanner(tmp_path):
    """signals=raw: the networks learn the two channels of log attenuation; synthesize writes the
    translated raw low/high (an identity generator gives every count back), colours them as the
    target's scanner (vendor_b's table, by the scene loader's own scanner) colours its signals,
    recomputes the CLCXray encoding and keeps labels and annotations."""
    from xraybag.engine.xray.calibration import calibrate_colour
    from xraybag.engine.xray.colour import clcxray_encoding, pseudo_colour
    from xraybag.scenes.loader import builtin_dir, load_scene

    a = raw_dataset(tmp_path / "A", "pidray")
    b = raw_dataset(tmp_path / "B", "pidray_vendor_b", gain=1.3, seed=1)
    cg = CycleGANSynthesizer(**FAST, residual=True, signals="raw", iterations=2)
    weights = cg.train(a, b, tmp_path / "run", device="cpu", progress=False)
    state = torch.load(weights, weights_only=False)
    cfg = state["config"]
    assert cfg["signals"] == "raw" and cfg["channels"] == 2 and cfg["background_tolerance"] == 0.03
    assert cfg["scanners_B"]["top"]["colour"]["table"] == "vendor_b" and not cfg["scanners_A"]["top"].get("colour")
    assert state["G_AB"]["model.1.weight"].shape[1] == 2  # the first convolution sees low and high

    last = max(int(k.split(".")[1]) for k in state["G_AB"] if k.startswith("model."))
    for g in ("G_AB", "G_BA"):  # the residual generator with its change zeroed: the identity
        state[g][f"model.{last}.weight"].zero_()
        state[g][f"model.{last}.bias"].zero_()
    ident = tmp_path / "identity.pt"
    torch.save(state, ident)
    out = tmp_path / "out"
    r = run("synthesize", "cyclegan", "--data", a, "-o", out, "--opt", f"weights={ident}")
    assert r.exit_code == 0, r.output
    vendor_b = load_scene(builtin_dir() / "pidray_vendor_b.yaml")
    cal = calibrate_colour(vendor_b.spec.scanners[0], vendor_b.library)
    coco = json.loads((out / "annotations.json").read_text())
    for im in coco["images"]:
        note = im.pop("synthetic")
        assert note["raw_translated"] is True and note["raw"] == "translated" and note["coloured_by"] == "top"
        raw_in = {ch: tifffile.imread(a / im["raw"][ch]).astype(int) for ch in ("low", "high")}
        raw_out = {ch: tifffile.imread(out / im["raw"][ch]) for ch in ("low", "high")}
        for ch, counts in raw_out.items():
            assert counts.dtype == np.uint16 and np.abs(counts - raw_in[ch]).max() <= 1
        want = pseudo_colour(raw_out["low"] / 60000.0, raw_out["high"] / 60000.0, cal)
        assert np.array_equal(np.asarray(Image.open(out / im["file_name"])), want)
        own = pseudo_colour(raw_out["low"] / 60000.0, raw_out["high"] / 60000.0,
                            calibrate_colour(load_scene(builtin_dir() / "pidray.yaml").spec.scanners[0], vendor_b.library))
        assert np.abs(want.astype(int) - own.astype(int)).max() > 50  # another scanner's colours
        enc = np.asarray(Image.open(out / "clcxray" / Path(im["file_name"]).name))
        assert np.array_equal(enc, clcxray_encoding(raw_out["high"], raw_out["low"]))
        assert (out / im["labels"]).read_bytes() == (a / im["labels"]).read_bytes()
    assert coco == {**json.loads((a / "annotations.json").read_text())}

    noisy = [tmp_path / f"noisy{k}" for k in range(3)]  # plus the target's detector: drawn with seed
    for out_k, seed in zip(noisy, (0, 0, 1)):
        r = run("synthesize", "cyclegan", "--data", a, "-o", out_k, "--opt", f"weights={ident}", "--opt",
                "detector=target", "--opt", f"seed={seed}")
        assert r.exit_code == 0, r.output
    low = [tifffile.imread(o / "raw/000000_top_low.tiff") for o in noisy]
    assert np.array_equal(low[0], low[1]) and not np.array_equal(low[0], low[2])
    assert not np.array_equal(low[0], tifffile.imread(out / "raw/000000_top_low.tiff"))
    im = json.loads((noisy[0] / "annotations.json").read_text())["images"][0]
    assert im["synthetic"]["detector"] == "target" and im["synthetic"]["seed"] == 0
    assert (noisy[0] / im["labels"]).read_bytes() == (a / im["labels"]).read_bytes()

    moved = tmp_path / "moved"  # the trained (not identity) generator changes the raw signals
    assert run("synthesize", "cyclegan", "--data", a, "-o", moved, "--opt", f"weights={weights}").exit_code == 0
    assert not np.array_equal(tifffile.imread(moved / "raw/000000_top_low.tiff"), tifffile.imread(a / "raw/000000_top_low.tiff"))


def test_detector_target_gives_the_target_detectors_noise_and_blur():
    """match_detector against the engine: a view recorded by scanner A, given what B's detector adds,
    has the noise and the edge of the same view recorded by B (the engine's compound Poisson noise,
    blur and electronic noise), also when B's pixels are finer (B then seen at A's pixel size:
    its quanta over A's pixel area, its blur in mm); A -> A adds nothing."""
    import copy

    from xraybag.engine.xray.detect import channel_response, detect
    from xraybag.engine.xray.scanners import view_geometry
    from xraybag.learners.cyclegan.rawsignals import match_detector
    from xraybag.learners.tip.rawfolder import empty_scene
    from xraybag.materials import default_library
    from xraybag.scenes.loader import builtin_dir
    from xraybag.scenes.models import Scanner

    lib = default_library()
    block = yaml.safe_load((builtin_dir() / "pidray.yaml").read_text())["scanners"][0]
    a = Scanner.model_validate(block).model_dump(mode="json")
    b = copy.deepcopy(a)
    b["spectrum"]["mas"] = a["spectrum"]["mas"] / 4
    b["noise"].update(blur=1.0, electronic=4.0)
    fine = dict(copy.deepcopy(b), pitch=0.8 * a["pitch"])
    fine_at_a = copy.deepcopy(b)  # the finer detector with A's pixels: blur 1.0 of 0.8 A-pixels
    fine_at_a["noise"]["blur"] = 0.8

    def render(blk, seed):
        s = Scanner.model_validate(blk)
        g = view_geometry(s, empty_scene(s, 100.0))
        L = np.zeros((128, 128, 1))
        L[:, :64, 0], L[:, 64:, 0] = 100.0, 20.0  # water: an edge between two slabs
        return detect(L, ["water"], s, channel_response(s, lib, g.pixel_mm**2, g.distance_mm), lib,
                      np.random.default_rng(seed), g.pixel_mm)

    t_a = render(a, 1)
    for target, reference in ((b, b), (fine, fine_at_a)):
        t_b = render(reference, 2)
        m = match_detector({ch: t_a[ch] for ch in ("low", "high")}, a, target, np.random.default_rng(3))
        for ch in ("low", "high"):
            flat = (slice(8, 120), slice(8, 56))
            assert 0.9 < m[ch][flat].std() / t_b[ch][flat].std() < 1.1
            assert abs(m[ch][flat].mean() / t_b[ch][flat].mean() - 1) < 0.005
            edge = lambda x: x[8:120].mean(axis=0)[20:108]  # the mean profile across the edge
            assert np.abs(edge(t_a[ch]) - edge(t_b[ch])).max() > 0.05  # A's edge is sharper than B's
            assert np.abs(edge(m[ch]) - edge(t_b[ch])).max() < 0.01
    same = match_detector({"low": t_a["low"]}, a, a, np.random.default_rng(0))
    assert np.array_equal(same["low"], t_a["low"])


def test_detector_target_follows_beam_hardening_behind_any_material():
    """pidray -> pidray_vendor_b (another spectrum, filter and detector; one pitch): a slab recorded by
    A and carried to B's mean transmissions as a translation carries it (its relative noise kept),
    given what B's detector adds, has the noise B's own render of that slab has (the engine's compound
    Poisson noise with scatter and blur), within 10 %, behind water, aluminium, iron, water on iron
    and lead. Without the pixel's material (``N T`` quanta in both) iron 8 mm comes out 20 % too
    noisy; the fitted water / iron pair reproduces the engine's own slabs."""
    import json as _json

    from xraybag.engine.xray.detect import channel_response, detect
    from xraybag.engine.xray.scanners import view_geometry
    from xraybag.learners.cyclegan.rawsignals import _slab_model, fit_slabs, match_detector
    from xraybag.learners.tip.rawfolder import empty_scene
    from xraybag.materials import default_library
    from xraybag.scenes.loader import builtin_dir
    from xraybag.scenes.models import Scanner

    lib = default_library()

    def block(name):
        return Scanner.model_validate(yaml.safe_load((builtin_dir() / f"{name}.yaml").read_text())["scanners"][0]
                                      ).model_dump(mode="json")

    a, b = block("pidray"), block("pidray_vendor_b")
    b["pitch"] = a["pitch"]

    def render(blk, materials, thick, seed):
        s = Scanner.model_validate(blk)
        g = view_geometry(s, empty_scene(s, 100.0))
        L = np.broadcast_to(np.asarray(thick, float), (96, 96, len(materials))).copy()
        return detect(L, materials, s, channel_response(s, lib, g.pixel_mm**2, g.distance_mm), lib,
                      np.random.default_rng(seed), g.pixel_mm)

    model_b = _slab_model(_json.dumps(b, sort_keys=True))
    for materials, thick in ((["water"], [50.0]), (["water"], [300.0]), (["aluminium"], [30.0]), (["iron"], [8.0]),
                             (["iron"], [20.0]), (["water", "iron"], [150.0, 4.0]), (["lead"], [1.0])):
        t_a, t_b = render(a, materials, thick, 1), render(b, materials, thick, 2)
        carried = {ch: t_a[ch] * t_b[ch].mean() / t_a[ch].mean() for ch in ("low", "high")}
        m = match_detector(carried, a, b, np.random.default_rng(3))
        flat = (slice(8, 88), slice(8, 88))
        for ch in ("low", "high"):
            ratio = m[ch][flat].std() / t_b[ch][flat].std()
            assert 0.9 < ratio < 1.1, (materials, thick, ch, ratio)
        if materials in (["water"], ["iron"], ["water", "iron"]):  # a basis slab: the fit finds it
            att = -np.log([[t_b["low"][flat].mean(), t_b["high"][flat].mean()]])
            want = np.zeros(2)
            want[[["water", "iron"].index(x) for x in materials]] = thick
            assert np.allclose(fit_slabs(model_b, att)[0], want, rtol=0.03, atol=1.5), (materials, fit_slabs(model_b, att))


def test_raw_signals_bad_input_is_refused_in_one_line(tmp_path, weights):
    a = raw_dataset(tmp_path / "A", "pidray")
    folder = image_folder(tmp_path / "F", 2)
    fast = [x for k, v in FAST.items() for x in ("--opt", f"{k}={v}")]
    run_dir = tmp_path / "run"
    one_line_error(run("train", "cyclegan", "--data", a, "--target", folder, "-o", run_dir, *fast, "--opt", "signals=raw"),
                   "--target: signals=raw needs an xraybag dataset with raw/")
    one_line_error(run("train", "cyclegan", "--data", a, "--target", a, "-o", run_dir, *fast, "--opt", "signals=hsv"),
                   "option signals: 'hsv'")
    coco = json.loads((a / "annotations.json").read_text())
    no_raw = tmp_path / "N"
    shutil.copytree(a, no_raw)
    coco["images"][1].pop("raw")
    (no_raw / "annotations.json").write_text(json.dumps(coco))
    one_line_error(run("train", "cyclegan", "--data", no_raw, "--target", a, "-o", run_dir, *fast, "--opt", "signals=raw"),
                   "images[1]: --data: image has no raw low and high")
    outside = tmp_path / "O"
    shutil.copytree(a, outside)
    coco = json.loads((a / "annotations.json").read_text())
    coco["images"][1]["raw"]["low"] = "../A/raw/000000_top_low.tiff"
    (outside / "annotations.json").write_text(json.dumps(coco))
    one_line_error(run("train", "cyclegan", "--data", outside, "--target", a, "-o", run_dir, *fast, "--opt", "signals=raw"),
                   "path '../A/raw/000000_top_low.tiff' leaves the dataset folder")
    ct = tmp_path / "C"
    shutil.copytree(a, ct)
    (ct / "scenes/000000.yaml").write_text(yaml.safe_dump({"scanners": [{"name": "top", "type": "ct"}]}))
    one_line_error(run("train", "cyclegan", "--data", ct, "--target", a, "-o", run_dir, *fast, "--opt", "signals=raw"),
                   "scanners.top")
    assert not run_dir.exists()

    raw_w = CycleGANSynthesizer(**FAST, signals="raw", iterations=1).train(a, a, tmp_path / "rw", device="cpu",
                                                                           progress=False)
    out = tmp_path / "out"
    one_line_error(run("synthesize", "cyclegan", "--data", no_raw, "-o", out, "--opt", f"weights={raw_w}"),
                   "image has no raw low and high")
    one_line_error(run("synthesize", "cyclegan", "--data", a, "-o", out, "--opt", f"weights={raw_w}", "--opt", "raw=drop"),
                   "option raw=drop")
    one_line_error(run("synthesize", "cyclegan", "--data", a, "-o", out, "--opt", f"weights={raw_w}", "--opt",
                       "detector=vendor"), "option detector: 'vendor'")
    one_line_error(run("synthesize", "cyclegan", "--data", odd_dataset(tmp_path / "D"), "-o", out, "--opt",
                       f"weights={weights}", "--opt", "detector=target"), "option detector=target: only weights")
    state = torch.load(raw_w, weights_only=False)
    state["config"]["a_max"] = 7.0
    other_units = tmp_path / "a7.pt"
    torch.save(state, other_units)
    one_line_error(run("synthesize", "cyclegan", "--data", a, "-o", out, "--opt", f"weights={other_units}"),
                   "units of a_max=7.0")
    assert not out.exists()
    # a checkpoint of rgb images is not resumed on raw signals
    shutil.copy(weights.parent / "checkpoint.pt", tmp_path / "rw" / "checkpoint.pt")
    r = run("train", "cyclegan", "--data", a, "--target", a, "-o", tmp_path / "rw", *fast, "--opt", "signals=raw",
            "--opt", "iterations=2", "--resume")
    one_line_error(r, "the checkpoint was trained with channels=3")
