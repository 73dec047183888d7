"""The SAM-based segmenters ``sam_finetune`` and ``apsam``: SAM built from segment-anything's classes
with adapters, checkpoint loading, the decoder with the EAE's initial tokens, a few training
iterations of each learner and predictions (tiny network, 64 px input: seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("segment_anything")

import tifffile  # noqa: E402
from PIL import Image  # noqa: E402

from xraybag.errors import XraybagError  # noqa: E402
from xraybag.learners.base import Prompt, load  # noqa: E402
from xraybag.learners.data import decode_segmentation  # noqa: E402
from xraybag.learners.seg_data import SegmentationDataset, mask_to_rle  # noqa: E402

H, W = 48, 60
SMALL = {"image_size": 64, "epochs": 1, "batch_size": 2, "warmup_iters": 0, "lr": 1e-3, "val_every": 0}


def make_dataset(root: Path, n: int = 4, seed: int = 0) -> Path:
    """``n`` images of ``H x W``: a dense rectangle (knife, id 1) and a lighter disc (gun, id 2) on a
    bright background, in the png and in the raw low/high channels."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "raw").mkdir()
    yy, xx = np.mgrid[:H, :W]
    recs, anns = [], []
    for k in range(n):
        stem, iid = f"{k:06d}_top", k + 1
        x0, y0 = int(rng.integers(1, W // 2 - 4)), int(rng.integers(1, H // 2 - 4))
        rect = (xx >= x0) & (xx < x0 + 16) & (yy >= y0) & (yy < y0 + 9)
        cx, cy = int(rng.integers(W // 2 + 6, W - 7)), int(rng.integers(H // 2 + 6, H - 7))
        disc = (xx - cx) ** 2 + (yy - cy) ** 2 <= 25
        low, high = np.full((H, W), 0.9), np.full((H, W), 0.95)
        low[rect], high[rect] = 0.3, 0.6
        low[disc], high[disc] = 0.55, 0.7
        Image.fromarray((np.stack([high, (high + low) / 2, low], -1) * 255).astype(np.uint8)).save(root / "images" / f"{stem}.png")
        for c, arr in (("low", low), ("high", high)):
            tifffile.imwrite(root / "raw" / f"{stem}_{c}.tiff", (arr * 65535).astype(np.uint16))
        recs.append({"id": iid, "file_name": f"images/{stem}.png", "width": W, "height": H, "bag": k, "view": "top",
                     "raw": {"low": f"raw/{stem}_low.tiff", "high": f"raw/{stem}_high.tiff"}})
        for j, (m, cat) in enumerate(((rect, 1), (disc, 2))):
            anns.append({"id": 10 * iid + j, "image_id": iid, "category_id": cat, "bbox": [0, 0, 1, 1],
                         "area": int(m.sum()), "iscrowd": 0, "difficulty": "easy", "segmentation": mask_to_rle(m)})
    coco = {"info": {}, "licenses": [], "images": recs, "annotations": anns,
            "categories": [{"id": 1, "name": "knife"}, {"id": 2, "name": "gun"}]}
    (root / "annotations.json").write_text(json.dumps(coco))
    return root


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: these networks are tiny, and two threads on a busy 2-core machine run
    several times slower than one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return SegmentationDataset(make_dataset(tmp_path_factory.mktemp("apsam") / "d"), split="all", min_side=0)


def tiny_sam(image_size: int = 64, embed: int = 192, depth: int = 4):
    """A SAM of the tiny preset's shape built directly from segment-anything's classes."""
    from functools import partial

    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    g = image_size // 16
    torch.manual_seed(5)
    return Sam(
        image_encoder=ImageEncoderViT(depth=depth, embed_dim=embed, img_size=image_size, mlp_ratio=4,
                                      norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=3, patch_size=16,
                                      qkv_bias=True, use_rel_pos=True, global_attn_indexes=(1, 3), window_size=8,
                                      out_chans=128),
        prompt_encoder=PromptEncoder(embed_dim=128, image_embedding_size=(g, g), input_image_size=(image_size,) * 2,
                                     mask_in_chans=16),
        mask_decoder=MaskDecoder(num_multimask_outputs=3, transformer_dim=128, iou_head_depth=3, iou_head_hidden_dim=128,
                                 transformer=TwoWayTransformer(depth=2, embedding_dim=128, mlp_dim=512, num_heads=4)),
    )


def randomise(module) -> None:
    """Non-zero values everywhere (SAM zero-initialises its relative positions and the adapters' Up)."""
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)


def test_registered_and_options():
    fin, ap = load("sam_finetune"), load("apsam")
    assert fin.kind == ap.kind == "segmenter" and fin.promptable and ap.promptable
    assert {"eae", "apg", "channels", "eae_size"} <= set(ap.options()) and not {"eae", "apg"} & set(fin.options())
    a = ap(eae="false", apg="no", channels="raw")
    assert a.parts() == (False, False) and a.channels_option() == "raw"
    with pytest.raises(XraybagError, match="option 'preset' must be one of tiny, vit_b, vit_l, vit_h"):
        fin(preset="vit_x").net_config()
    with pytest.raises(XraybagError, match="image_size' must be a multiple of 16"):
        fin(image_size=70).net_config()
    cfg = ap(preset="vit_l").net_config()  # the official hyper-parameters (build_sam.py)
    assert (cfg.encoder_embed_dim, cfg.encoder_depth, cfg.encoder_num_heads, cfg.encoder_global_attn_indexes,
            cfg.image_size, cfg.window_size, cfg.prompt_embed_dim, cfg.eae_size) == (1024, 24, 16, (5, 11, 17, 23), 1024, 14, 256, 512)


def test_adapters_start_as_the_plain_block_and_decode_matches_segment_anything():
    from xraybag.learners.apsam.net import SamSegNet
    from xraybag.learners.apsam.sam import decode, load_sam_state, preset_config

    sam = tiny_sam()
    randomise(sam)
    net = SamSegNet(preset_config("tiny", image_size=64, eae=True))
    load_sam_state(net, sam.state_dict(), "mem", "tiny")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        emb = sam.image_encoder(x)
        assert torch.allclose(net.sam.image_encoder(x), emb, atol=1e-5)  # fresh adapters add nothing
        pe = sam.prompt_encoder
        sparse, dense = pe(points=(torch.tensor([[[20.0, 30.0]]]), torch.ones(1, 1)), boxes=None, masks=None)
        want_m, want_iou = sam.mask_decoder.predict_masks(emb, pe.get_dense_pe(), sparse, dense)
        got_m, got_iou = decode(sam.mask_decoder, emb, pe.get_dense_pe(), sparse, dense)
        assert torch.allclose(got_m, want_m, atol=1e-5) and torch.allclose(got_iou, want_iou, atol=1e-5)
        tok = torch.randn(1, 4, 128)
        shifted, _ = decode(sam.mask_decoder, emb, pe.get_dense_pe(), sparse, dense, token_init=tok)
        assert shifted.shape == (1, 4, 16, 16) and (shifted - want_m).abs().max() > 0.01 * want_m.abs().max()
        # the adapted block is segment-anything's block until an adapter's Up is no longer zero
        blk, plain, z = net.sam.image_encoder.blocks[1], sam.image_encoder.blocks[1], torch.randn(1, 4, 4, 192)
        assert type(blk).__mro__[1] is type(plain) and torch.allclose(blk(z), plain(z), atol=1e-5)
        blk.adapter_mlp.up.bias.fill_(1.0)  # the MLP adapter now outputs 1 everywhere, scaled by 0.5
        assert torch.allclose(blk(z) - plain(z), torch.full_like(z, 0.5), atol=1e-5)


def test_segment_anything_state_dict_loads_through_the_checkpoint_option(tmp_path):
    from xraybag.learners.apsam.learner import APSAMSegmenter, SAMFinetuneSegmenter

    sam = tiny_sam(image_size=128)
    randomise(sam)
    path = tmp_path / "sam_tiny.pth"
    torch.save(sam.state_dict(), path)
    want = sam.state_dict()
    net, info = SAMFinetuneSegmenter(checkpoint=str(path), image_size=128).build()
    got = {k[len("sam."):]: v for k, v in net.state_dict().items()}
    assert set(want) <= set(got) and all(torch.equal(got[k], want[k]) for k in want)
    assert info["frozen_encoder"] and info["resized"] == [] and info["loaded"] == len(want)
    assert not net.sam.image_encoder.blocks[0].attn.qkv.weight.requires_grad
    assert net.sam.image_encoder.blocks[0].adapter_attn.down.weight.requires_grad
    # wrapped, prefixed, at another input size: position tables interpolated to the 64 px grid
    torch.save({"model": {"module." + k: v for k, v in want.items()}}, tmp_path / "wrapped.pt")
    net, info = APSAMSegmenter(checkpoint=str(tmp_path / "wrapped.pt"), image_size=64).build()
    assert sorted(info["resized"]) == sorted(["image_encoder.pos_embed"] + [f"image_encoder.blocks.{i}.attn.rel_pos_{a}"
                                                                             for i in (1, 3) for a in "hw"])
    assert net.sam.image_encoder.pos_embed.shape == (1, 4, 4, 192)
    assert torch.equal(net.sam.mask_decoder.mask_tokens.weight, want["mask_decoder.mask_tokens.weight"])


def test_files_that_are_not_sam_state_dicts_are_one_line_errors(tmp_path):
    from xraybag.learners.apsam.learner import SAMFinetuneSegmenter

    det = tmp_path / "atss_weights.pt"
    torch.save({"model": {"backbone.body.conv1.weight": torch.zeros(8, 3, 3, 3)}, "extra": {"atss": {}}}, det)
    rnd = tmp_path / "random.pt"
    torch.save({"a": torch.zeros(2), "b": torch.ones(3)}, rnd)
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    listed = tmp_path / "list.pt"
    torch.save([1, 2, 3], listed)
    other = tmp_path / "wider.pth"
    torch.save(tiny_sam(embed=96).state_dict(), other)
    deeper = tmp_path / "deeper.pth"
    torch.save(tiny_sam(depth=5).state_dict(), deeper)
    cases = [
        (det, r"atss_weights.pt: not a SAM state dict: no image_encoder.\*, prompt_encoder.\*, mask_decoder.\* keys"),
        (rnd, r"random.pt: not a SAM state dict: no image_encoder"),
        (text, r"notes.pth: not a torch checkpoint \("),
        (listed, r"list.pt: not a SAM state dict \(it holds list"),
        (other, r"wider.pth: image_encoder.pos_embed has shape \[1, 4, 4, 96\] in the file but the 'tiny' preset "
                r"needs \[1, 4, 4, 192\] \(a checkpoint of another preset\?\)$"),
        (deeper, r"deeper.pth: not a SAM checkpoint of the 'tiny' preset: the file has 14 parameters it lacks \(e.g. 'image_encoder.blocks.4.norm1.weight'"),
        (tmp_path / "missing.pth", r"missing.pth: checkpoint file does not exist"),
    ]
    for path, words in cases:
        with pytest.raises(XraybagError, match=words) as e:
            SAMFinetuneSegmenter(checkpoint=str(path), image_size=64).build()
        assert "\n" not in str(e.value)


def test_gradients_reach_adapters_and_eae_not_the_frozen_encoder(data):
    from xraybag.learners.apsam.learner import APSAMSegmenter
    from xraybag.learners.apsam.samples import PromptSamples, collate

    net, info = APSAMSegmenter(image_size=64, freeze_encoder=True).build()
    samples = PromptSamples(data, 64, max_objects=2, seed=0)
    images, targets = collate([samples[0], samples[1]])
    assert images[0].shape == (2, 3, 64, 64) and images[1].shape == (2, 2, 64, 64)
    assert targets[0]["masks"].shape == (2, 64, 64) and targets[0]["size"] == (51, 64)  # 48 x 60 -> 51 x 64
    for t in targets:  # each click lies on its object
        for m, (x, y) in zip(t["masks"], t["points"][:, 0].tolist()):
            assert m[int(y), int(x)] == 1
    losses = net(images, targets)
    assert set(losses) == {"loss_focal", "loss_dice", "loss_iou", "loss_focal_apg", "loss_dice_apg", "loss_iou_apg"}
    sum(losses.values()).backward()
    enc = net.sam.image_encoder
    assert enc.blocks[0].attn.qkv.weight.grad is None and enc.patch_embed.proj.weight.grad is None
    assert enc.blocks[2].adapter_attn.up.weight.grad.abs().sum() > 0
    assert enc.blocks[2].adapter_mlp.up.weight.grad.abs().sum() > 0
    assert net.eae.blocks[0].conv.weight.grad.abs().sum() > 0 and net.eae.locate.proj.weight.grad.abs().sum() > 0
    assert net.sam.mask_decoder.mask_tokens.weight.grad.abs().sum() > 0
    assert info["trainable_params"] < info["params"]


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """Both learners trained for two iterations (encoder frozen: a checkpoint of the tiny shape)."""
    from xraybag.learners.apsam.learner import APSAMSegmenter, SAMFinetuneSegmenter

    root = tmp_path_factory.mktemp("runs")
    sam = tiny_sam()
    randomise(sam)
    ckpt = root / "sam.pth"
    torch.save(sam.state_dict(), ckpt)
    out = {}
    for cls in (SAMFinetuneSegmenter, APSAMSegmenter):
        learner = cls(checkpoint=str(ckpt), **SMALL)
        weights = learner.train(data, root / cls.name, progress=False)
        out[cls.name] = (learner, weights, sam.state_dict())
    return out


def test_training_writes_weights_log_and_keeps_the_frozen_encoder(trained, data):
    from xraybag.learners.training import read_log

    for name, (learner, weights, start) in trained.items():
        assert weights.name == "weights.pt" and (weights.parent / "checkpoint.pt").is_file()
        log = [r for r in read_log(weights.parent) if "loss" in r]
        assert len(log) == 2 and all(r["sec"] > 0 and np.isfinite(r["loss"]) for r in log)
        assert ("loss_dice_apg" in log[0]) == (name == "apsam")
        state = torch.load(weights, weights_only=True)
        model = state["model"]
        assert state["extra"]["learner"] == name and state["extra"]["frozen_encoder"]
        frozen = [k for k in start if k.startswith("image_encoder.")]
        assert frozen and all(torch.equal(model["sam." + k], start[k]) for k in frozen)
        assert model["sam.image_encoder.blocks.1.adapter_attn.up.weight"].abs().sum() > 0  # started at zero
        assert not torch.equal(model["sam.mask_decoder.iou_token.weight"], start["mask_decoder.iou_token.weight"])
        if name == "apsam":
            fresh, _ = learner.build()  # the same seed: the EAE as it started
            assert not torch.equal(model["eae.blocks.0.conv.weight"], fresh.eae.blocks[0].conv.weight)
        # the weights file loads back through the checkpoint path
        again, info = type(learner)(checkpoint=str(weights), image_size=64).build()
        assert info["loaded"] == len(model) and torch.equal(
            again.sam.image_encoder.blocks[1].adapter_attn.up.weight, model["sam.image_encoder.blocks.1.adapter_attn.up.weight"])


def test_predict_one_result_per_prompt_in_order(trained, data):
    learner, weights, _ = trained["apsam"]
    prompts = [
        Prompt(image_id=2, points=[[30, 40]], category_id=2),
        Prompt(image_id=1, points=[[5, 5], [10, 8]], ann_id=10),
        Prompt(image_id=2, box=(1, 1, 40, 30), ann_id=21),
        Prompt(image_id=1, points=[[59, 47]]),
    ]
    res = learner.predict(weights, data, prompts=prompts, device="cpu")
    assert len(res) == 4 and [r["image_id"] for r in res] == [2, 1, 2, 1]
    assert [r.get("ann_id") for r in res] == [None, 10, 21, None] and [r["category_id"] for r in res] == [2, 1, 2, None]
    for r in res:
        m = decode_segmentation(r["segmentation"], H, W)
        assert r["segmentation"]["size"] == [H, W] and isinstance(r["segmentation"]["counts"], str)
        ys, xs = np.nonzero(m)
        want = [0.0] * 4 if not len(xs) else [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        assert r["bbox"] == [float(v) for v in want] and np.isfinite(r["score"])
    # APG turns the single clicks (no box) into two points inside the image
    assert "apg_points" in res[0] and "apg_points" in res[3] and "apg_points" not in res[1] and "apg_points" not in res[2]
    assert all(0 <= x < W and 0 <= y < H for x, y in res[0]["apg_points"])
    assert learner.predict(weights, data, prompts=prompts[:1], device="cpu") == res[:1]  # seeded


def test_predict_without_prompts_clicks_each_object_and_scores(trained, data):
    from xraybag.learners.apsam.samples import click_points
    from xraybag.learners.seg_metrics import segmentation_metrics

    learner, weights, _ = trained["sam_finetune"]
    res = learner.predict(weights, data, device="cpu")
    assert [r["ann_id"] for r in res] == [a["id"] for im in data.images for a in data.annotations(im["id"])]
    m = segmentation_metrics(data.coco_subset(), res, coco=False)
    assert 0.0 <= m["mIoU"] <= 1.0 and m["per_class"]["knife"]["objects"] == 4
    rect = np.zeros((10, 12), bool)
    rect[2:7, 3:8] = True  # 5 x 5: the centre pixel (5, 4) is the one farthest from the outline
    assert click_points(rect[None], "center", np.random.default_rng(0)).tolist() == [[5, 4]]
    rect[2:7, 8:10] = True  # 5 x 7: three pixels of row 4 are 3 from the outline; a seeded draw picks one
    picks = {tuple(click_points(rect[None], "center", np.random.default_rng(s))[0].tolist()) for s in range(12)}
    assert picks == {(5, 4), (6, 4), (7, 4)}
    x, y = click_points(rect[None], "random", np.random.default_rng(0))[0]
    assert rect[int(y), int(x)]


def test_bad_prompts_and_options_are_one_line_errors(trained, data):
    learner, weights, _ = trained["apsam"]
    cases = [
        ([Prompt(image_id=1, points=[[60, 10]])], r"^prompt 0 \(image 1\): point \(60, 10\) lies outside the image \(60 x 48\)$"),
        ([Prompt(image_id=1, points=[[1, 1]]), Prompt(image_id=99, points=[[1, 1]])], r"prompt 1: image id 99 is not in the 'all' split"),
        ([Prompt(image_id=1, box=(0, 0, 70, 10))], r"box \[0.0, 0.0, 70.0, 10.0\] lies outside the image"),
    ]
    for prompts, words in cases:
        with pytest.raises(XraybagError, match=words) as e:
            learner.predict(weights, data, prompts=prompts, device="cpu")
        assert "\n" not in str(e.value)
    from xraybag.learners.apsam.learner import SAMFinetuneSegmenter

    with pytest.raises(XraybagError, match="trained by learner 'apsam', not 'sam_finetune'"):
        SAMFinetuneSegmenter().predict(weights, data, device="cpu")
    with pytest.raises(XraybagError, match="option 'click' must be one of center, random"):
        type(learner)(click="middle").predict(weights, data, device="cpu")


def test_learner_module_imports_without_torch():
    import subprocess
    import sys

    code = "import sys, xraybag.learners.apsam.learner; print('torch' in sys.modules, 'segment_anything' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_mask_losses_by_hand():
    from xraybag.learners.apsam.net import mask_losses

    gt = torch.zeros(1, 2, 2)
    gt[0, 0] = 1.0                                            # 2 of 4 pixels
    logits = torch.zeros(1, 3, 2, 2)                          # p = 0.5 everywhere for outputs 0 and 2
    logits[0, 1] = torch.tensor([[20.0, 20.0], [-20.0, -20.0]])  # output 1 is the mask itself
    iou_pred = torch.tensor([[0.2, 0.9, 0.1]])
    focal, dice, iou_mse = mask_losses(logits, iou_pred, gt, focal_weight=2.0)
    # output 1 has the lowest loss: Dice 1 - (2 * 2 + 1) / (2 + 2 + 1) = 0 and focal ~ 0
    assert float(dice) == pytest.approx(0.0, abs=1e-6) and float(focal) == pytest.approx(0.0, abs=1e-6)
    # true IoUs: outputs 0 and 2 (logits 0, not > 0) are empty -> 0; output 1 -> 1
    assert float(iou_mse) == pytest.approx((0.2 ** 2 + 0.1 ** 2 + 0.1 ** 2) / 3)
    # with only the p = 0.5 outputs: Dice 1 - (2 * 1 + 1) / (2 + 2 + 1) = 0.4; focal per pixel
    # alpha_t * ln 2 * 0.5 ** 2, alpha_t 0.25 on the object, 0.75 off it: mean 0.5 * ln 2 / 4
    focal, dice, _ = mask_losses(logits[:, [0, 2]], iou_pred[:, [0, 2]], gt, focal_weight=2.0)
    assert float(dice) == pytest.approx(0.4) and float(focal) == pytest.approx(2.0 * 0.5 * np.log(2) / 4)


def test_content_window_cuts_the_empty_tunnel():
    from xraybag.learners.apsam.samples import CONTENT_PAD as P, content_window

    rgb = np.ones((200, 300, 3), np.float32)
    rgb[50:80, 100:140] = (0.9, 0.5, 0.2)          # the bag's contents
    rgb[10, 5] = 0.0                               # one dark pixel of noise: a row and column need two
    assert content_window(rgb) == (100 - P, 50 - P, 140 + P, 80 + P)
    # a prompt (or an object) outside the contents widens the window to hold it, inside the image
    assert content_window(rgb, np.array([[250.0, 60, 297, 70]])) == (100 - P, 50 - P, 300, 80 + P)
    assert content_window(np.ones((20, 30, 3), np.float32)) == (0, 0, 30, 20)
