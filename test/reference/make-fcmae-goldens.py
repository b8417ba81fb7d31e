#!/usr/bin/env python3
"""Generate golden fixtures for ConvNeXt V2's FCMAE masked pre-training forward pass.

FCMAE (the "fully convolutional masked autoencoder" of ConvNeXt V2) hides a random
subset of 32x32 image patches, encodes only the visible ones with a sparse ConvNeXt V2
encoder (MinkowskiEngine sparse tensors in the official code), fills the hidden
positions with a learned mask token, decodes with one or more dense ConvNeXt V2 blocks
and predicts the pixels of every patch. The loss is the mean squared error over the
hidden patches only.

MinkowskiEngine is not available here, so this script computes the sparse encoder in
two independent ways and checks that they agree:

  * forward_sparse: a small emulation of MinkowskiEngine itself. Features are rows of
    a [M, C] matrix at integer coordinates (batch, y, x); convolutions gather their
    neighbours through a coordinate lookup table and enumerate kernel offsets exactly
    as MinkowskiEngine's kernel region does; the checkpoint is read in the official
    MinkowskiEngine layout. The goldens are computed with this path.
  * forward_dense: ordinary dense tensors with masks, using the checkpoint after the
    official remap to dense layout (ConvNeXt-V2's utils.remap_checkpoint_keys).

What it makes (everything under test/fixtures/golden-fcmae/):
  <case>/weights.safetensors        float32 parameters, official FCMAE key names and
                                    MinkowskiEngine layouts (as an FCMAE checkpoint's
                                    'model' dict)
  <case>/weights-dense.safetensors  (one case) the same parameters after the remap to
                                    dense layout; encoder keys lose their 'encoder.' prefix
  <case>/input.npy                  float32 [N, 3, H, W] images, C-order
  <case>/mask.npy                   float32 [N, L] patch mask, 0 = visible (kept),
                                    1 = hidden (removed); patch l is row l // w, column l % w
  <case>/encoder.npy                float32 [N, dims[3], H/32, W/32] encoder output after
                                    densifying (zero at hidden patches)
  <case>/pred.npy                   float32 [N, 32*32*3, H/32, W/32] prediction, official layout
  <case>/loss.npy                   float32 [1] the loss
  manifest.json                     configs, seeds, file names, conventions, and a record
                                    of what the official gen_random_mask returns for
                                    fixed torch seeds

How to run (from the repository root; needs only torch and numpy):
  /usr/bin/python3 test/reference/make-fcmae-goldens.py

Everything is computed in float64 from the float32 parameters and inputs and rounded to
float32 once at the end. The output is deterministic. After writing, the script reads
every case back from disk, re-runs it from the saved files and checks the results.

Semantics, as read from facebookresearch/ConvNeXt-V2 (models/fcmae.py,
models/convnextv2_sparse.py, models/utils.py, utils.py) and the MinkowskiEngine fork it
pins (shwoo93/MinkowskiEngine at bbc30ef):

  * Mask: gen_random_mask keeps len_keep = int(L * (1 - mask_ratio)) patches per sample:
    noise = torch.randn(N, L); the patches with the len_keep smallest noise values are
    kept (argsort of the noise, then argsort again to unshuffle a [1..1, 0..0] row).
  * Encoder input: the patch mask [N, L] is reshaped to [N, h, w] and repeated 8 times
    along each axis (2 ** (stages - 1)), which is the stem's resolution H/4. The stem
    (4x4 stride-4 conv + channels-first LayerNorm) runs on the whole image and its output
    is multiplied by (1 - mask). to_sparse then keeps every site whose channels are not
    all zero: the visible sites.
  * Sparse ops compute only at existing (visible) sites. The 7x7 depthwise conv
    (stride 1) keeps the input's sites; its output at a site is the sum over the 49
    kernel offsets of the neighbours that exist, plus the bias; missing neighbours count
    as zero. LayerNorm, Linear, GELU act on each row. The residual adds row by row.
    DropPath is the identity (rate 0, and eval).
  * Sparse GRN: the L2 norm is taken over ALL rows of the feature matrix, i.e. over the
    visible sites of every sample of the batch together, per channel:
    Gx = ||F||_2 over rows ([1, C]); Nx = Gx / (mean over channels of Gx + 1e-6);
    out = gamma * (F * Nx) + beta + F. (The dense GRN takes the norm per sample.)
  * Downsample: row-wise LayerNorm, then a 2x2 stride-2 sparse conv. Its output sites are
    the input sites rounded down to multiples of the new stride; for even kernels the
    offsets are 0 and 1 (times the input stride). Because a patch (32 pixels) is the
    encoder's total stride, each 2x2 block is wholly visible or wholly hidden at every
    stage, so this equals a dense 2x2 conv evaluated at visible output sites.
  * Densify: x.dense()[0] places rows at coordinate // tensor_stride with the origin at 0
    and the size max(coordinate) + 1. The official forward therefore needs a visible
    patch in the last patch row and column somewhere in the batch (otherwise the dense
    output shrinks and the decoder's reshape of the mask fails); every case here has one
    and the script asserts it.
  * Decoder: 1x1 conv proj; x * (1 - mask) + mask_token * mask with the [N, L] mask
    reshaped to [N, 1, h, w]; dense ConvNeXt V2 blocks (per-sample GRN); 1x1 conv pred to
    patch^2 * 3 channels.
  * Loss: pred [N, C, h, w] -> [N, L, C]; target = patchify(imgs), pixel (c, py, px) of
    a patch at index (py * p + px) * 3 + c ('nchpwq->nhwpqc'); with norm_pix_loss the
    target is normalised per patch with its mean and unbiased variance: (t - mean) /
    sqrt(var + 1e-6). loss = sum(mean_c((pred - target)^2) * mask) / sum(mask).
  * Layouts: MinkowskiDepthwiseConvolution.kernel is [K*K, C] and
    MinkowskiConvolution.kernel is [K*K, Cin, Cout]; kernel index k has offset k % K
    along the first spatial axis (H) and k // K along the second (W) (MinkowskiEngine's
    kernel_region: the first axis varies fastest). Dense weight[o, i, y, x] =
    kernel[x * K + y, i, o], which is what remap_checkpoint_keys computes
    (permute, reshape to [.., K, K], transpose(3, 2)). Biases are [1, C], GRN gamma/beta
    [1, C]; LayerNorms sit under '.ln.' and linears under '.linear.'.
"""

import json
import math
import os
import sys
import importlib.util
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F

# The file writers are make-goldens.py's (its name has a dash, so it is loaded by path).
_spec = importlib.util.spec_from_file_location("make_goldens", os.path.join(os.path.dirname(os.path.abspath(__file__)), "make-goldens.py"))
_make_goldens = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_make_goldens)
write_safetensors = _make_goldens.write_safetensors
save_npy = _make_goldens.save_npy
# Its reader keeps the file's key order (Python dicts do), which the read-back check relies on.
read_safetensors = _make_goldens.read_safetensors

ROOT = os.path.join("test", "fixtures", "golden-fcmae")

PATCH = 32          # the patch size is the encoder's total stride (4 * 2 * 2 * 2)
STEM_STRIDE = 4
LN_EPS = 1e-6
GRN_EPS = 1e-6
NORM_PIX_EPS = 1e-6


# ---------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------

def cases():
    """The fixture cases. Sizes are kept small: the prediction layer alone has
    32*32*3 * decoder_dim weights, so decoder_dim is small.

    mask: ("seed", s)    torch.manual_seed(s), then the official gen_random_mask
          ("given", m)   a fixed [N, L] mask (0 visible, 1 hidden)
    """
    return [
        {
            "name": "fcmae-mini",
            "description": "FCMAE, depths [1,1,2,1], dims [8,12,16,24], decoder dim 8 depth 1, "
                           "2x3x64x64, mask ratio 0.6 (1 of 4 patches visible) from a torch seed",
            "weight_seed": 401, "input_seed": 402,
            "depths": [1, 1, 2, 1], "dims": [8, 12, 16, 24],
            "decoder_dim": 8, "decoder_depth": 1, "in_chans": 3,
            "batch": 2, "img_size": 64, "mask_ratio": 0.6, "norm_pix_loss": False,
            "mask": ("seed", 301),
            "dense_weights": False,
        },
        {
            "name": "fcmae-mini-normpix",
            "description": "FCMAE, depths [1,1,1,1], dims [8,8,16,16], decoder dim 4 depth 2, "
                           "2x3x64x64, norm_pix_loss, given mask with 2 adjacent visible patches "
                           "per sample (horizontal in sample 0, vertical in sample 1)",
            "weight_seed": 411, "input_seed": 412,
            "depths": [1, 1, 1, 1], "dims": [8, 8, 16, 16],
            "decoder_dim": 4, "decoder_depth": 2, "in_chans": 3,
            "batch": 2, "img_size": 64, "mask_ratio": 0.5, "norm_pix_loss": True,
            "mask": ("given", [[0, 0, 1, 1], [1, 0, 1, 0]]),
            "dense_weights": True,
        },
    ]


# ---------------------------------------------------------------------------
# Seeded random checkpoint in the official FCMAE key names and layouts
# ---------------------------------------------------------------------------

class Init:
    """Draws parameters from one seeded generator, in a fixed order.

    The official init (GRN gamma/beta = 0, LayerNorm 1/0, zero biases, a tiny mask
    token) would make whole parts of the network an identity and hide bugs, so every
    parameter gets a random, non-degenerate value instead.
    """

    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)

    def normal(self, shape, std):
        return torch.randn(*shape, generator=self.g, dtype=torch.float32) * std

    def uniform(self, shape, lo, hi):
        return lo + (hi - lo) * torch.rand(*shape, generator=self.g, dtype=torch.float32)

    def weight(self, shape, fan_in):
        return self.normal(shape, 1.0 / math.sqrt(fan_in))  # keeps activations O(1)

    def bias(self, shape):
        return self.uniform(shape, -0.5, 0.5)

    def ln(self, c):
        return self.uniform([c], 0.5, 1.5), self.uniform([c], -0.5, 0.5)

    def grn(self, shape):
        return self.uniform(shape, -1.0, 1.0), self.uniform(shape, -1.0, 1.0)


def make_checkpoint(cfg):
    """A state dict as FCMAE.state_dict() would hold it (same key order: the model's own
    parameter mask_token first, then submodules in registration order)."""
    init = Init(cfg["weight_seed"])
    dims, depths, D, cin = cfg["dims"], cfg["depths"], cfg["decoder_dim"], cfg["in_chans"]
    sd = OrderedDict()
    sd["mask_token"] = init.uniform([1, D, 1, 1], -1.0, 1.0)

    # encoder.downsample_layers: stem (dense Conv2d + channels-first LayerNorm), then
    # three (MinkowskiLayerNorm, MinkowskiConvolution k=2 s=2).
    e = "encoder.downsample_layers."
    sd[e + "0.0.weight"] = init.weight([dims[0], cin, 4, 4], cin * 16)
    sd[e + "0.0.bias"] = init.bias([dims[0]])
    sd[e + "0.1.weight"], sd[e + "0.1.bias"] = init.ln(dims[0])
    for i in range(1, 4):
        a, b = dims[i - 1], dims[i]
        sd[e + "%d.0.ln.weight" % i], sd[e + "%d.0.ln.bias" % i] = init.ln(a)
        sd[e + "%d.1.kernel" % i] = init.weight([4, a, b], 4 * a)
        sd[e + "%d.1.bias" % i] = init.bias([1, b])

    # encoder.stages: sparse blocks; parameters in registration order
    # (dwconv, norm, pwconv1, pwconv2, grn).
    for i in range(4):
        c = dims[i]
        for j in range(depths[i]):
            p = "encoder.stages.%d.%d." % (i, j)
            sd[p + "dwconv.kernel"] = init.weight([49, c], 49)
            sd[p + "dwconv.bias"] = init.bias([1, c])
            sd[p + "norm.ln.weight"], sd[p + "norm.ln.bias"] = init.ln(c)
            sd[p + "pwconv1.linear.weight"] = init.weight([4 * c, c], c)
            sd[p + "pwconv1.linear.bias"] = init.bias([4 * c])
            sd[p + "pwconv2.linear.weight"] = init.weight([c, 4 * c], 4 * c)
            sd[p + "pwconv2.linear.bias"] = init.bias([c])
            sd[p + "grn.gamma"], sd[p + "grn.beta"] = init.grn([1, 4 * c])

    sd["proj.weight"] = init.weight([D, dims[3], 1, 1], dims[3])
    sd["proj.bias"] = init.bias([D])

    # decoder: dense ConvNeXt V2 blocks (dwconv, norm, pwconv1, grn, pwconv2).
    for j in range(cfg["decoder_depth"]):
        p = "decoder.%d." % j
        sd[p + "dwconv.weight"] = init.weight([D, 1, 7, 7], 49)
        sd[p + "dwconv.bias"] = init.bias([D])
        sd[p + "norm.weight"], sd[p + "norm.bias"] = init.ln(D)
        sd[p + "pwconv1.weight"] = init.weight([4 * D, D], D)
        sd[p + "pwconv1.bias"] = init.bias([4 * D])
        sd[p + "grn.gamma"], sd[p + "grn.beta"] = init.grn([1, 1, 1, 4 * D])
        sd[p + "pwconv2.weight"] = init.weight([D, 4 * D], 4 * D)
        sd[p + "pwconv2.bias"] = init.bias([D])

    out = PATCH * PATCH * cin
    # smaller than the other layers so that pred is on the scale of the target pixels
    # and the loss depends on the target's details (e.g. norm_pix_loss) noticeably
    sd["pred.weight"] = init.normal([out, D, 1, 1], 0.3 / math.sqrt(D))
    sd["pred.bias"] = init.bias([out])
    return sd


def remap_to_dense(sd):
    """The official fine-tuning conversion (utils.remap_checkpoint_keys), written out.

    main_finetune.py first drops every key containing 'decoder', 'mask_token', 'proj' or
    'pred', then remaps the rest. Here those decoder-side keys are carried over unchanged
    (they are dense already; the official function, if given them, would turn the
    decoder GRN's [1,1,1,C] into [1,1,1,1,1,C] through its 'grn' rule).

    Encoder keys: drop the leading 'encoder.'; '<m>.kernel' becomes '<m>.weight' with
    [K*K, Cin, Cout] -> permute(2,1,0) -> [Cout, Cin, K, K] -> transpose(3,2), and
    [K*K, C] -> permute(1,0) -> [C, 1, K, K] -> transpose(3,2); keys containing 'ln' or
    'linear' lose that component; then biases that are not 1-D are flattened and GRN
    parameters [1, C] get two leading unit axes ([1, 1, 1, C]).
    """
    decoder_side = ("decoder", "mask_token", "proj", "pred")
    enc, rest = OrderedDict(), OrderedDict()
    for k, v in sd.items():
        (rest if any(s in k for s in decoder_side) else enc)[k] = v

    out = OrderedDict()
    for k, v in enc.items():
        if k.startswith("encoder"):
            k = ".".join(k.split(".")[1:])
        if k.endswith("kernel"):
            k = ".".join(k.split(".")[:-1]) + ".weight"
            if v.dim() == 3:
                kv, cin, cout = v.shape
                ks = int(math.sqrt(kv))
                out[k] = v.permute(2, 1, 0).reshape(cout, cin, ks, ks).transpose(3, 2)
            else:
                kv, c = v.shape
                ks = int(math.sqrt(kv))
                out[k] = v.permute(1, 0).reshape(c, 1, ks, ks).transpose(3, 2)
            continue
        if "ln" in k or "linear" in k:
            parts = k.split(".")
            parts.pop(-2)
            k = ".".join(parts)
        out[k] = v
    for k in list(out.keys()):
        v = out[k]
        if k.endswith("bias") and v.dim() != 1:
            out[k] = v.reshape(-1)
        elif "grn" in k:
            out[k] = v.unsqueeze(0).unsqueeze(1)
    for k, v in rest.items():
        out[k] = v
    return OrderedDict((k, v.contiguous()) for k, v in out.items())


def check_remap_rule(sd, dense):
    """Check element by element that dense weight[o, i, y, x] = kernel[x*K + y, i, o]
    (depthwise: weight[c, 0, y, x] = kernel[x*K + y, c])."""
    n = 0
    for k, v in sd.items():
        if not k.endswith(".kernel"):
            continue
        w = dense[k[len("encoder."):-len("kernel")] + "weight"]
        K = int(math.sqrt(v.shape[0]))
        for y in range(K):
            for x in range(K):
                if v.dim() == 2:
                    assert torch.equal(w[:, 0, y, x], v[x * K + y, :]), k
                else:
                    assert torch.equal(w[:, :, y, x], v[x * K + y].t()), k
        n += 1
    return n


# ---------------------------------------------------------------------------
# Masks
# ---------------------------------------------------------------------------

def gen_random_mask(n, L, mask_ratio):
    """The official FCMAE.gen_random_mask procedure, drawing from torch's global RNG.
    Returns (mask [N, L] float32, noise, ids_shuffle)."""
    len_keep = int(L * (1 - mask_ratio))
    noise = torch.randn(n, L)
    ids_shuffle = torch.argsort(noise, dim=1)   # ascending: smallest noise is kept
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    mask = torch.ones([n, L])
    mask[:, :len_keep] = 0
    mask = torch.gather(mask, dim=1, index=ids_restore)
    return mask, noise, ids_shuffle


def upsample_mask(mask, scale):
    """[N, L] patch mask -> [N, p*scale, p*scale], each patch repeated scale x scale."""
    p = int(mask.shape[1] ** 0.5)
    return mask.reshape(-1, p, p).repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)


def case_mask(cfg):
    kind, value = cfg["mask"]
    L = (cfg["img_size"] // PATCH) ** 2
    if kind == "seed":
        torch.manual_seed(value)
        mask, _, _ = gen_random_mask(cfg["batch"], L, cfg["mask_ratio"])
    else:
        mask = torch.tensor(value, dtype=torch.float32)
    assert list(mask.shape) == [cfg["batch"], L]
    return mask


def check_mask_fits_official_densify(mask, h, w):
    """x.dense() sizes its output from the largest visible coordinate, so the official
    forward only works when some sample has a visible patch in the last row and some
    sample has one in the last column."""
    vis = (mask.reshape(-1, h, w) == 0).nonzero()
    assert vis[:, 1].max().item() == h - 1 and vis[:, 2].max().item() == w - 1, \
        "official densify would shrink the encoder output for this mask"
    assert all((mask[b] == 0).any() for b in range(mask.shape[0]))


# ---------------------------------------------------------------------------
# Shared pieces
# ---------------------------------------------------------------------------

def layer_norm_last(x, w, b):
    """LayerNorm over the last axis (biased variance, eps inside the square root)."""
    u = x.mean(-1, keepdim=True)
    s = (x - u).pow(2).mean(-1, keepdim=True)
    return (x - u) / torch.sqrt(s + LN_EPS) * w + b


def layer_norm_cf(x, w, b):
    """LayerNorm over the channel axis of NCHW (the official 'channels_first' one)."""
    u = x.mean(1, keepdim=True)
    s = (x - u).pow(2).mean(1, keepdim=True)
    x = (x - u) / torch.sqrt(s + LN_EPS)
    return w[:, None, None] * x + b[:, None, None]


def stem(imgs, P):
    """Patch embedding on the whole image: Conv2d(k=4, s=4) + channels-first LayerNorm."""
    e = "downsample_layers.0."
    x = F.conv2d(imgs, P[e + "0.weight"], P[e + "0.bias"], stride=STEM_STRIDE)
    return layer_norm_cf(x, P[e + "1.weight"], P[e + "1.bias"])


def dense_block(x, P, p, grn_mask=None, per_sample_grn=True):
    """A ConvNeXt V2 block on NCHW with dense-layout weights under prefix p.

    grn_mask (NHWC broadcastable, 1 visible / 0 hidden) restricts GRN's norm to the
    visible sites; per_sample_grn=False takes that norm over the whole batch.
    """
    y = F.conv2d(x, P[p + "dwconv.weight"], P[p + "dwconv.bias"], padding=3, groups=x.shape[1])
    y = y.permute(0, 2, 3, 1)
    y = layer_norm_last(y, P[p + "norm.weight"], P[p + "norm.bias"])
    y = F.gelu(F.linear(y, P[p + "pwconv1.weight"], P[p + "pwconv1.bias"]))
    if grn_mask is not None:
        y = y * grn_mask
    dims = (1, 2) if per_sample_grn else (0, 1, 2)
    gx = torch.sqrt((y * y).sum(dim=dims, keepdim=True))
    nx = gx / (gx.mean(dim=-1, keepdim=True) + GRN_EPS)
    y = P[p + "grn.gamma"] * (y * nx) + P[p + "grn.beta"] + y
    y = F.linear(y, P[p + "pwconv2.weight"], P[p + "pwconv2.bias"])
    if grn_mask is not None:
        y = y * grn_mask
    return x + y.permute(0, 3, 1, 2)


def decode_and_loss(enc, imgs, mask, P, cfg):
    """forward_decoder and forward_loss of the official FCMAE, on dense tensors.
    P holds the decoder-side keys (proj, mask_token, decoder.*, pred) in dense layout."""
    x = F.conv2d(enc, P["proj.weight"], P["proj.bias"])
    n, c, h, w = x.shape
    m = mask.reshape(-1, h, w).unsqueeze(1).to(x.dtype)
    x = x * (1.0 - m) + P["mask_token"].repeat(n, 1, h, w) * m
    for j in range(cfg["decoder_depth"]):
        x = dense_block(x, P, "decoder.%d." % j)
    pred = F.conv2d(x, P["pred.weight"], P["pred.bias"])
    return pred, fcmae_loss(imgs, pred, mask, cfg["norm_pix_loss"])


def patchify(imgs):
    """[N, 3, H, W] -> [N, L, p*p*3]; inside a patch, index (py * p + px) * 3 + c."""
    p = PATCH
    n, c, H, W = imgs.shape
    assert H == W and H % p == 0
    h = w = H // p
    x = imgs.reshape(n, c, h, p, w, p)
    x = torch.einsum("nchpwq->nhwpqc", x)
    return x.reshape(n, h * w, p * p * c)


def fcmae_loss(imgs, pred, mask, norm_pix_loss, unbiased=True):
    """FCMAE.forward_loss (unbiased=False only to show the variance choice matters)."""
    n, c = pred.shape[:2]
    pred = torch.einsum("ncl->nlc", pred.reshape(n, c, -1))
    target = patchify(imgs)
    if norm_pix_loss:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True, unbiased=unbiased)  # official: unbiased
        target = (target - mean) / (var + NORM_PIX_EPS) ** 0.5
    loss = ((pred - target) ** 2).mean(dim=-1)  # [N, L]
    return (loss * mask).sum() / mask.sum()


# ---------------------------------------------------------------------------
# Path 1: an emulation of the MinkowskiEngine sparse encoder (MinkowskiEngine layouts)
# ---------------------------------------------------------------------------

class Sparse:
    """What a MinkowskiEngine SparseTensor holds: feature rows at coordinates.

    coords  [M, 3] long: batch index, y (H axis), x (W axis), in stem-grid units;
            every coordinate is a multiple of `stride` (the tensor stride)
    feats   [M, C] float64
    grid    (N, Hs, Ws), the stem grid's extent, used only for the lookup table
    """

    def __init__(self, coords, feats, stride, grid):
        self.coords, self.feats, self.stride, self.grid = coords, feats, stride, grid
        table = torch.full(grid, -1, dtype=torch.long)
        table[coords[:, 0], coords[:, 1], coords[:, 2]] = torch.arange(len(coords))
        self.table = table

    def with_feats(self, feats):
        return Sparse(self.coords, feats, self.stride, self.grid)

    def rows_at(self, coords):
        """Row index of each coordinate, or -1 where no site exists there."""
        _, Hs, Ws = self.grid
        y, x = coords[:, 1], coords[:, 2]
        inside = (y >= 0) & (y < Hs) & (x >= 0) & (x < Ws)
        rows = torch.full((len(coords),), -1, dtype=torch.long)
        rows[inside] = self.table[coords[inside, 0], y[inside], x[inside]]
        return rows

    def gather(self, coords):
        """Features at the given coordinates; zero rows where no site exists."""
        rows = self.rows_at(coords)
        padded = torch.cat([self.feats, self.feats.new_zeros(1, self.feats.shape[1])])
        return padded[torch.where(rows >= 0, rows, torch.full_like(rows, len(self.feats)))]


def kernel_offset(k, K):
    """MinkowskiEngine's hypercube kernel region: index k -> per-axis offsets, the first
    spatial axis varying fastest; odd sizes are centred, even sizes start at 0."""
    offs = []
    for _ in range(2):
        i = k % K
        offs.append(i if K % 2 == 0 else i - K // 2)
        k //= K
    return offs  # [dy (H), dx (W)], in units of the input tensor stride


def to_sparse(x):
    """MinkowskiOps.to_sparse: the sites whose channels are not all zero."""
    n, c, Hs, Ws = x.shape
    b, y, xx = torch.where(x.abs().sum(1) != 0)
    coords = torch.stack([b, y, xx], dim=1)
    return Sparse(coords, x[b, :, y, xx], 1, (n, Hs, Ws))


def sparse_dwconv(t, kernel, bias):
    """MinkowskiDepthwiseConvolution(k=7, stride 1): output sites = input sites."""
    K = int(math.sqrt(kernel.shape[0]))
    out = torch.zeros_like(t.feats)
    for k in range(K * K):
        dy, dx = kernel_offset(k, K)
        nb = t.coords + torch.tensor([0, dy * t.stride, dx * t.stride])
        out = out + t.gather(nb) * kernel[k]
    return t.with_feats(out + bias)


def sparse_conv_down(t, kernel, bias):
    """MinkowskiConvolution(k=2, stride=2): output sites are the input sites rounded
    down to multiples of 2 * stride; each gathers offsets {0, 1} * stride per axis."""
    s2 = 2 * t.stride
    oc = t.coords.clone()
    oc[:, 1:] = torch.div(oc[:, 1:], s2, rounding_mode="floor") * s2
    oc = torch.unique(oc, dim=0)  # sorted, one row per output site
    K = int(math.sqrt(kernel.shape[0]))
    out = torch.zeros(len(oc), kernel.shape[2], dtype=t.feats.dtype)
    for k in range(K * K):
        dy, dx = kernel_offset(k, K)
        nb = oc + torch.tensor([0, dy * t.stride, dx * t.stride])
        out = out + t.gather(nb) @ kernel[k]
    return Sparse(oc, out + bias, s2, t.grid)


def sparse_grn(t, gamma, beta):
    """MinkowskiGRN: the norm runs over every row, i.e. all visible sites of the batch."""
    f = t.feats
    gx = torch.norm(f, p=2, dim=0, keepdim=True)
    nx = gx / (gx.mean(dim=-1, keepdim=True) + GRN_EPS)
    return t.with_feats(gamma * (f * nx) + beta + f)


def sparse_block(t, P, p):
    y = sparse_dwconv(t, P[p + "dwconv.kernel"], P[p + "dwconv.bias"])
    f = layer_norm_last(y.feats, P[p + "norm.ln.weight"], P[p + "norm.ln.bias"])
    f = F.gelu(F.linear(f, P[p + "pwconv1.linear.weight"], P[p + "pwconv1.linear.bias"]))
    f = sparse_grn(t.with_feats(f), P[p + "grn.gamma"], P[p + "grn.beta"]).feats
    f = F.linear(f, P[p + "pwconv2.linear.weight"], P[p + "pwconv2.linear.bias"])
    return t.with_feats(t.feats + f)  # DropPath is the identity


def densify(t):
    """SparseTensor.dense()[0]: position = coordinate // tensor stride, origin 0,
    size = largest position + 1 (batch: largest batch index + 1)."""
    pos = torch.div(t.coords[:, 1:], t.stride, rounding_mode="floor")
    n = int(t.coords[:, 0].max()) + 1
    h, w = (int(v) + 1 for v in pos.max(0)[0])
    out = torch.zeros(n, t.feats.shape[1], h, w, dtype=t.feats.dtype)
    out[t.coords[:, 0], :, pos[:, 0], pos[:, 1]] = t.feats
    return out


def forward_sparse(sd, cfg, imgs, mask):
    """The official FCMAE forward with the encoder emulated sparsely.
    sd: checkpoint in MinkowskiEngine layout (float32); imgs, mask: float32."""
    P = {k: v.double() for k, v in sd.items()}
    E = {k[len("encoder."):]: v for k, v in P.items() if k.startswith("encoder.")}
    imgs = imgs.double()
    m = upsample_mask(mask, PATCH // STEM_STRIDE).unsqueeze(1).double()
    x = stem(imgs, E) * (1.0 - m)
    t = to_sparse(x)
    visible = (m[:, 0] == 0).nonzero()
    assert torch.equal(t.coords, visible), "to_sparse must keep exactly the visible sites"
    for i in range(4):
        if i > 0:
            d = "downsample_layers.%d." % i
            t = t.with_feats(layer_norm_last(t.feats, E[d + "0.ln.weight"], E[d + "0.ln.bias"]))
            t = sparse_conv_down(t, E[d + "1.kernel"], E[d + "1.bias"])
        for j in range(cfg["depths"][i]):
            t = sparse_block(t, E, "stages.%d.%d." % (i, j))
    enc = densify(t)
    pred, loss = decode_and_loss(enc, imgs, mask.double(), P, cfg)
    return {"encoder": enc, "pred": pred, "loss": loss, "sites": len(t.coords)}


# ---------------------------------------------------------------------------
# Path 2: dense tensors and masks (dense layout, after remap_checkpoint_keys)
# ---------------------------------------------------------------------------

def forward_dense(dsd, cfg, imgs, mask, per_sample_grn=False):
    """The same forward on dense tensors. Every hidden site is kept at zero: sites a
    sparse op would not compute are multiplied by the mask after each op that would
    make them non-zero. per_sample_grn=True swaps the official batch-wide sparse GRN
    norm for a per-sample one (used only to show that the difference is visible)."""
    P = {k: v.double() for k, v in dsd.items()}
    imgs = imgs.double()
    n = imgs.shape[0]

    def keep(i):  # 1 at visible sites at stage i's resolution (stem grid / 2**i)
        return 1.0 - upsample_mask(mask.double(), PATCH // STEM_STRIDE // 2 ** i).unsqueeze(1)

    x = stem(imgs, P) * keep(0)
    for i in range(4):
        if i > 0:
            d = "downsample_layers.%d." % i
            x = layer_norm_cf(x, P[d + "0.weight"], P[d + "0.bias"]) * keep(i - 1)
            x = F.conv2d(x, P[d + "1.weight"], P[d + "1.bias"], stride=2) * keep(i)
        k = keep(i).permute(0, 2, 3, 1)
        for j in range(cfg["depths"][i]):
            p = "stages.%d.%d." % (i, j)
            # the dwconv reads zeros at hidden sites; its output there is masked
            # inside dense_block, after pwconv1/GELU and again after pwconv2
            x = dense_block(x, P, p, grn_mask=k, per_sample_grn=per_sample_grn)
    enc = x
    pred, loss = decode_and_loss(enc, imgs, mask.double(), P, cfg)
    assert enc.shape[0] == n
    return {"encoder": enc, "pred": pred, "loss": loss}


# ---------------------------------------------------------------------------
# File writers / readers
# ---------------------------------------------------------------------------

def load_npy(path):
    a = np.load(path)
    assert a.dtype == np.float32
    return torch.from_numpy(a)


# ---------------------------------------------------------------------------
# Building, checking and writing the cases
# ---------------------------------------------------------------------------

def case_inputs(cfg):
    """Images with a per-(sample, channel) offset and a ramp across the image, so that
    patches differ in mean and variance and norm_pix_loss's normalisation matters."""
    g = torch.Generator().manual_seed(cfg["input_seed"])
    n, c, s = cfg["batch"], cfg["in_chans"], cfg["img_size"]
    noise = torch.randn(n, c, s, s, generator=g, dtype=torch.float32)
    offset = torch.rand(n, c, 1, 1, generator=g, dtype=torch.float32) * 2 - 1
    slope = torch.rand(n, c, 1, 1, generator=g, dtype=torch.float32) * 2 - 1
    ramp = (torch.arange(s, dtype=torch.float32)[:, None] + torch.arange(s, dtype=torch.float32)) / s
    return (0.8 * noise + offset + slope * ramp).contiguous()


def rel_diff(a, b):
    a, b = a.double(), b.double()
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


def run_case(cfg, sd, x, mask):
    """Golden forward plus the semantic self-checks. Returns the sparse-path result."""
    assert cfg["in_chans"] == 3, "the official patchify assumes 3 channels"
    h = w = cfg["img_size"] // PATCH
    check_mask_fits_official_densify(mask, h, w)

    r = forward_sparse(sd, cfg, x, mask)
    dsd = remap_to_dense(sd)
    nk = check_remap_rule(sd, dsd)
    d = forward_dense(dsd, cfg, x, mask)
    ps = forward_dense(dsd, cfg, x, mask, per_sample_grn=True)

    hidden = mask.reshape(-1, 1, h, w).expand_as(r["encoder"]) == 1
    assert list(r["encoder"].shape) == [cfg["batch"], cfg["dims"][3], h, w]
    assert bool((r["encoder"][hidden] == 0).all()), "encoder output must be 0 at hidden patches"
    assert bool((d["encoder"][hidden] == 0).all())
    assert bool((r["encoder"][~hidden] != 0).all())
    assert r["sites"] == int((mask == 0).sum())
    for key in ("encoder", "pred", "loss"):
        rd = rel_diff(d[key], r[key])
        assert rd < 1e-12, "sparse and dense paths differ in %s: %g" % (key, rd)
    # the batch-wide sparse GRN norm is not the per-sample one
    grn_gap = abs(ps["loss"].item() - r["loss"].item()) / abs(r["loss"].item())
    assert grn_gap > 1e-4, "per-sample GRN should change the loss (gap %g)" % grn_gap
    assert rel_diff(ps["encoder"], r["encoder"]) > 1e-2
    # informational: what common mistakes in the loss would give
    imgs, m64 = x.double(), mask.double()
    variants = OrderedDict(grn_per_sample=ps["loss"].item())
    if cfg["norm_pix_loss"]:
        variants["norm_pix_biased_variance"] = fcmae_loss(imgs, r["pred"], m64, True, False).item()
        variants["norm_pix_off"] = fcmae_loss(imgs, r["pred"], m64, False).item()
        gap = abs(variants["norm_pix_off"] - r["loss"].item()) / r["loss"].item()
        assert gap > 0.01, "norm_pix_loss should matter (gap %g)" % gap
    else:
        variants["norm_pix_on"] = fcmae_loss(imgs, r["pred"], m64, True).item()
    variants["mean_over_all_patches"] = (
        fcmae_loss(imgs, r["pred"], torch.ones_like(m64), cfg["norm_pix_loss"]).item())
    r.update(dense=dsd, kernels_checked=nk, per_sample_loss=ps["loss"].item(), grn_gap=grn_gap,
             variants=variants)
    return r


def mask_spec(cfg):
    kind, value = cfg["mask"]
    if kind == "seed":
        return {"source": "gen_random_mask", "seed": value,
                "procedure": "torch.manual_seed(seed); then the official gen_random_mask"
                             "(imgs, mask_ratio) on CPU (noise = torch.randn(N, L), float32)"}
    return {"source": "given", "value": value}


def write_case(cfg):
    name = cfg["name"]
    d = os.path.join(ROOT, name)
    os.makedirs(d, exist_ok=True)
    sd = make_checkpoint(cfg)
    x = case_inputs(cfg)
    mask = case_mask(cfg)
    r = run_case(cfg, sd, x, mask)

    files = OrderedDict(weights="weights.safetensors")
    write_safetensors(os.path.join(d, "weights.safetensors"), sd)
    if cfg["dense_weights"]:
        write_safetensors(os.path.join(d, "weights-dense.safetensors"), r["dense"])
        files["weights_dense"] = "weights-dense.safetensors"
    for key, t in (("input", x), ("mask", mask), ("encoder", r["encoder"]),
                   ("pred", r["pred"]), ("loss", r["loss"].reshape(1))):
        save_npy(os.path.join(d, key + ".npy"), t)
        files[key] = key + ".npy"

    h = cfg["img_size"] // PATCH
    print("  %-20s loss %.6f  per-sample-GRN loss %.6f (rel gap %.3f)  visible sites %d"
          % (name, r["loss"].item(), r["per_sample_loss"], r["grn_gap"], r["sites"]))
    print("      pred %s  std %.3f   encoder std %.3f   remap checked on %d kernels"
          % (list(r["pred"].shape), r["pred"].std().item(),
             r["encoder"][r["encoder"] != 0].std().item(), r["kernels_checked"]))
    entry = OrderedDict(
        name=name, description=cfg["description"],
        config=OrderedDict(
            depths=cfg["depths"], dims=cfg["dims"], decoder_embed_dim=cfg["decoder_dim"],
            decoder_depth=cfg["decoder_depth"], in_chans=cfg["in_chans"],
            patch_size=PATCH, img_size=cfg["img_size"], mask_ratio=cfg["mask_ratio"],
            norm_pix_loss=cfg["norm_pix_loss"]),
        weight_seed=cfg["weight_seed"], input_seed=cfg["input_seed"],
        mask=mask_spec(cfg),
        mask_values=mask.to(torch.int64).tolist(),
        input_shape=list(x.shape), mask_shape=list(mask.shape),
        encoder_shape=list(r["encoder"].shape), pred_shape=list(r["pred"].shape),
        patch_grid=[h, h],
        loss=float(np.float32(r["loss"].item())),
        loss_variants_for_reference=OrderedDict(
            (k, float(np.float32(v))) for k, v in r["variants"].items()),
        files=files)
    return entry


def mask_reference():
    """What the official gen_random_mask returns right after torch.manual_seed(seed), on
    the CPU. Another random number generator will not reproduce these; the goldens'
    mask.npy files are what a test should feed in."""
    out = []
    for seed, n, L, ratio in ((0, 2, 4, 0.6), (301, 2, 4, 0.6), (0, 2, 49, 0.6)):
        torch.manual_seed(seed)
        mask, noise, ids = gen_random_mask(n, L, ratio)
        out.append(OrderedDict(
            seed=seed, torch=torch.__version__, N=n, L=L, mask_ratio=ratio,
            len_keep=int(L * (1 - ratio)),
            noise=[[float(v) for v in row] for row in noise.tolist()],
            ids_shuffle=ids.tolist(), mask=mask.to(torch.int64).tolist()))
    return out


CONVENTIONS = OrderedDict(
    dtype="all arrays float32 little-endian, C-order; computed in float64, rounded once",
    mask="float32 [N, L], 0 = visible (kept), 1 = hidden (removed); L = (H/32)*(W/32), "
         "patch l at row l // (W/32), column l % (W/32)",
    pred="float32 [N, 32*32*in_chans, H/32, W/32] (official FCMAE.forward_decoder output); "
         "channel (py*32 + px)*3 + c predicts pixel (c, 32*row + py, 32*col + px)",
    encoder="float32 [N, dims[3], H/32, W/32]: the sparse encoder's output after x.dense()[0]; "
            "exactly 0 at hidden patches",
    loss="float32 [1]: mean over hidden patches of the per-patch mean squared error",
    weights="weights.safetensors: official FCMAE state_dict keys and MinkowskiEngine layouts "
            "(dwconv.kernel [49, C], downsample kernel [4, Cin, Cout], biases [1, C], "
            "grn gamma/beta [1, C], '.ln.' and '.linear.' submodules); kernel index k is "
            "window position (k % K, k // K) along (H, W), i.e. dense weight[o, i, y, x] = "
            "kernel[x*K + y, i, o] (depthwise: weight[c, 0, y, x] = kernel[x*K + y, c])",
    weights_dense="weights-dense.safetensors: encoder keys after remap_checkpoint_keys "
                  "('encoder.' dropped, dense Conv2d layouts, 1-D biases, GRN [1,1,1,C]); "
                  "mask_token, proj.*, decoder.*, pred.* unchanged",
    grn="the encoder's GRN norm spans all visible sites of the whole batch (MinkowskiGRN on "
        "x.F); the decoder's GRN is the dense per-sample one",
    loss_variants_for_reference="not goldens: the loss a common mistake would give (GRN norm "
                                "per sample, biased variance, norm_pix flipped, mean over all "
                                "patches), so a test can check its tolerance tells them apart",
)


def make_all():
    manifest = OrderedDict(
        description="FCMAE (ConvNeXt V2 masked pre-training) forward goldens; see "
                    "test/reference/make-fcmae-goldens.py",
        conventions=CONVENTIONS, cases=[])
    for cfg in cases():
        manifest["cases"].append(write_case(cfg))
    manifest["gen_random_mask_reference"] = mask_reference()
    with open(os.path.join(ROOT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    return manifest


def verify(manifest):
    """Rebuild every case purely from the files on disk and compare."""
    ok = True
    byname = {c["name"]: c for c in cases()}
    for entry in manifest["cases"]:
        d = os.path.join(ROOT, entry["name"])
        cfg = dict(byname[entry["name"]])
        cfg.update(depths=entry["config"]["depths"], dims=entry["config"]["dims"],
                   decoder_depth=entry["config"]["decoder_depth"],
                   norm_pix_loss=entry["config"]["norm_pix_loss"])
        files = entry["files"]
        sd = read_safetensors(os.path.join(d, files["weights"]))
        assert list(sd.keys()) == list(make_checkpoint(cfg).keys())
        x = load_npy(os.path.join(d, files["input"]))
        mask = load_npy(os.path.join(d, files["mask"]))
        assert list(x.shape) == entry["input_shape"] and list(mask.shape) == entry["mask_shape"]
        r = forward_sparse(sd, cfg, x, mask)
        for key in ("encoder", "pred", "loss"):
            want = np.load(os.path.join(d, files[key]))
            got = r[key].reshape(want.shape).float().numpy()
            diff = float(np.abs(got - want).max())
            print("  %-20s %-8s read-back max abs diff %.1e" % (entry["name"], key, diff))
            ok &= diff == 0.0  # same float64 computation on the same float32 values
        if "weights_dense" in files:
            dsd = read_safetensors(os.path.join(d, files["weights_dense"]))
            rd = forward_dense(dsd, cfg, x, mask)
            want = load_npy(os.path.join(d, files["pred"]))
            rel = rel_diff(rd["pred"].float(), want)
            lrel = rel_diff(rd["loss"].float().reshape(1), load_npy(os.path.join(d, files["loss"])))
            print("  %-20s dense-layout weights: pred rel diff %.1e, loss rel diff %.1e"
                  % (entry["name"], rel, lrel))
            ok &= rel < 1e-6 and lrel < 1e-6
            for k, v in dsd.items():  # the layouts the dense loader must expect
                if k.endswith("dwconv.weight"):
                    ok &= v.dim() == 4 and v.shape[1] == 1
                if k.endswith("bias"):
                    ok &= v.dim() == 1
                if "grn" in k:
                    ok &= list(v.shape[:3]) == [1, 1, 1]
    return ok


def total_size(path):
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)


def main():
    torch.set_num_threads(1)  # keep float64 reductions in a fixed order
    os.makedirs(ROOT, exist_ok=True)
    print("writing FCMAE goldens to", ROOT)
    manifest = make_all()
    print("verifying from disk")
    ok = verify(manifest)
    size = total_size(ROOT)
    print("total size of %s: %d bytes (%.1f KiB)" % (ROOT, size, size / 1024))
    if not ok:
        print("read-back check FAILED")
        sys.exit(1)


if __name__ == "__main__":
    main()
