#!/usr/bin/env python3
"""Generate golden reference fixtures for the ConvNeXt compiler tests.

What it makes (everything under test/fixtures/golden/):
  <case>/weights.safetensors  float32 parameters, official facebookresearch key names
  <case>/input.npy            float32 NCHW input, C-order
  <case>/output.npy           float32 output (computed in float64, then rounded once)
  manifest.json               one entry per case (shapes, kind, model config)

Cases: single ops (grn, layernorm, dwconv, downsample, stem), single blocks
(v1-block, v2-block) and three small whole models (ConvNeXt V1 / V2).

How to run (from the repository root; needs only torch and numpy):
  /usr/bin/python3 test/reference/make-goldens.py

The output is deterministic: every case seeds torch with its own fixed seed.
After writing, the script reads every case back from disk, re-runs it from the
saved files, and checks the result against output.npy.
"""

import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.join("test", "fixtures", "golden")


# ---------------------------------------------------------------------------
# Modules (written from the papers' descriptions; names match official keys)
# ---------------------------------------------------------------------------

class LayerNormCF(nn.Module):
    """LayerNorm over the channel axis of an NCHW tensor ("channels_first")."""

    def __init__(self, c, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))
        self.eps = eps

    def forward(self, x):
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)  # biased variance
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class GRN(nn.Module):
    """Global Response Normalization (ConvNeXt V2) on an NHWC tensor."""

    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, 1, dim))
        self.eps = eps

    def forward(self, x):
        gx = torch.norm(x, p=2, dim=(1, 2), keepdim=True)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + self.eps)
        return self.gamma * (x * nx) + self.beta + x


class BlockV1(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()  # exact erf form
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.ones(dim))

    def branch(self, x):
        x = self.dwconv(x).permute(0, 2, 3, 1)
        x = self.pwconv2(self.act(self.pwconv1(self.norm(x))))
        return (self.gamma * x).permute(0, 3, 1, 2)

    def forward(self, x):
        return x + self.branch(x)


class BlockV2(nn.Module):
    def __init__(self, dim, ln_eps=1e-6, grn_eps=1e-6):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=ln_eps)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.grn = GRN(4 * dim, eps=grn_eps)
        self.pwconv2 = nn.Linear(4 * dim, dim)

    def branch(self, x):
        x = self.dwconv(x).permute(0, 2, 3, 1)
        x = self.pwconv2(self.grn(self.act(self.pwconv1(self.norm(x)))))
        return x.permute(0, 3, 1, 2)

    def forward(self, x):
        return x + self.branch(x)


class ConvNeXt(nn.Module):
    """ConvNeXt V1 or V2 (the only difference is the block type)."""

    def __init__(self, block, in_chans, num_classes, depths, dims):
        super().__init__()
        self.downsample_layers = nn.ModuleList()
        self.downsample_layers.append(nn.Sequential(
            nn.Conv2d(in_chans, dims[0], kernel_size=4, stride=4),
            LayerNormCF(dims[0])))
        for i in range(1, 4):
            self.downsample_layers.append(nn.Sequential(
                LayerNormCF(dims[i - 1]),
                nn.Conv2d(dims[i - 1], dims[i], kernel_size=2, stride=2)))
        self.stages = nn.ModuleList(
            nn.Sequential(*[block(dims[i]) for _ in range(depths[i])])
            for i in range(4))
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.head = nn.Linear(dims[-1], num_classes)

    def forward(self, x):
        for i in range(4):
            x = self.stages[i](self.downsample_layers[i](x))
        return self.head(self.norm(x.mean([-2, -1])))


class Named(nn.Module):
    """Hold one module under a key prefix (e.g. `norm.`) so the saved keys match
    the manifest; optionally run it on NHWC (for GRN) while taking/returning NCHW."""

    def __init__(self, name, mod, nhwc=False):
        super().__init__()
        self.add_module(name, mod)
        self.key, self.nhwc = name, nhwc

    def forward(self, x):
        mod = getattr(self, self.key)
        if self.nhwc:
            return mod(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return mod(x)


# ---------------------------------------------------------------------------
# Non-trivial random initialisation
# ---------------------------------------------------------------------------

def uniform_(t, lo, hi):
    with torch.no_grad():
        t.uniform_(lo, hi)


def randomize(model):
    """Give every parameter a random, non-degenerate value.

    The official init (GRN gamma/beta = 0, layer scale = 1e-6, LN = 1/0) makes
    whole sub-blocks an identity and would hide implementation bugs.
    """
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            w = m.weight
            fan_in = w[0].numel()  # in_ch/groups * kh * kw, or in_features
            with torch.no_grad():
                w.normal_(0.0, 1.0 / fan_in ** 0.5)  # keeps activations O(1)
            uniform_(m.bias, -0.5, 0.5)
        elif isinstance(m, (nn.LayerNorm, LayerNormCF)):
            uniform_(m.weight, 0.5, 1.5)
            uniform_(m.bias, -0.5, 0.5)
        elif isinstance(m, GRN):
            uniform_(m.gamma, -1.0, 1.0)
            uniform_(m.beta, -1.0, 1.0)
        elif isinstance(m, BlockV1):
            uniform_(m.gamma, 0.2, 1.0)


# ---------------------------------------------------------------------------
# File writers / readers (safetensors and .npy written by hand-ish)
# ---------------------------------------------------------------------------

def write_safetensors(path, tensors):
    """Minimal safetensors writer: u64 LE header length, JSON header, raw data."""
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        data = t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape),
                        "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * (-len(hj) % 8)  # pad so the data section starts 8-aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """Independent reader used for the read-back check."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    base = 8 + n
    out = {}
    for name, info in header.items():
        assert info["dtype"] == "F32"
        b, e = info["data_offsets"]
        arr = np.frombuffer(raw[base + b:base + e], dtype="<f4").reshape(info["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


def save_npy(path, t):
    np.save(path, np.ascontiguousarray(t.detach().cpu().numpy().astype("<f4")))


# ---------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------

def op_cases():
    """(name, seed, builder, input_shape, description[, input_scale]) for single ops/blocks.

    The *-eps cases make the epsilons matter: inputs with a variance (LayerNorm) or an L2
    norm (GRN) near eps = 1e-2, so that an implementation that drops or misplaces eps fails.
    """
    return [
        ("grn", 101, lambda: Named("grn", GRN(12), nhwc=True), [2, 12, 5, 7],
         "GRN(12) on NHWC (input/output NCHW; permuted in and out)"),
        ("layernorm", 102, lambda: Named("norm", LayerNormCF(10)), [2, 10, 6, 5],
         "channels-first LayerNorm(10, eps=1e-6)"),
        ("dwconv", 103, lambda: Named("dwconv", nn.Conv2d(12, 12, 7, padding=3, groups=12)),
         [2, 12, 9, 11], "depthwise Conv2d(12,12,7,padding=3,groups=12)"),
        ("downsample", 104, lambda: Named("downsample", nn.Sequential(
            LayerNormCF(8), nn.Conv2d(8, 16, 2, stride=2))), [2, 8, 9, 7],
         "LayerNorm channels_first(8) then Conv2d(8,16,2,stride=2); odd sizes floor"),
        ("stem", 105, lambda: Named("stem", nn.Sequential(
            nn.Conv2d(3, 16, 4, stride=4), LayerNormCF(16))), [2, 3, 34, 29],
         "Conv2d(3,16,4,stride=4) then LayerNorm channels_first(16); odd sizes floor"),
        ("v1-block", 106, lambda: Named("block", BlockV1(20)), [2, 20, 7, 6],
         "ConvNeXt V1 block(dim=20) with layer scale and residual"),
        ("v2-block", 107, lambda: Named("block", BlockV2(20)), [2, 20, 7, 6],
         "ConvNeXt V2 block(dim=20) with GRN and residual"),
        ("layernorm-eps", 108, lambda: Named("norm", LayerNormCF(10, eps=1e-2)), [2, 10, 6, 5],
         "channels-first LayerNorm(10, eps=1e-2) on inputs of std 0.1 (variance ~ eps)", 0.1),
        ("grn-eps", 109, lambda: Named("grn", GRN(12, eps=1e-2), nhwc=True), [2, 12, 5, 7],
         "GRN(12, eps=1e-2) on inputs of std 0.003 (mean L2 norm ~ eps)", 0.003),
        ("downsample-eps", 110, lambda: Named("downsample", nn.Sequential(
            LayerNormCF(8, eps=1e-2), nn.Conv2d(8, 16, 2, stride=2))), [2, 8, 9, 7],
         "LayerNorm channels_first(8, eps=1e-2) then Conv2d(8,16,2,stride=2), inputs of std 0.1", 0.1),
        ("stem-eps", 111, lambda: Named("stem", nn.Sequential(
            nn.Conv2d(3, 16, 4, stride=4), LayerNormCF(16, eps=1e-2))), [2, 3, 34, 29],
         "Conv2d(3,16,4,stride=4) then LayerNorm channels_first(16, eps=1e-2), inputs of std 0.02", 0.02),
        ("v2-block-eps", 112, lambda: Named("block", BlockV2(20, ln_eps=1e-2, grn_eps=1e-2)), [2, 20, 7, 6],
         "ConvNeXt V2 block(dim=20), LayerNorm and GRN eps=1e-2, inputs of std 0.05", 0.05),
    ]


def model_cases():
    """(name, seed, family, depths, dims, classes, in_chans, input_shape)."""
    return [
        ("convnextv1-mini", 201, "ConvNeXtV1", [1, 1, 2, 1], [16, 24, 32, 48], 10, 3, [2, 3, 45, 38]),
        ("convnextv2-mini", 202, "ConvNeXtV2", [1, 2, 1, 1], [16, 32, 40, 64], 10, 3, [2, 3, 64, 48]),
        ("convnextv2-gray", 203, "ConvNeXtV2", [1, 1, 1, 1], [24, 32, 48, 64], 7, 1, [2, 1, 32, 32]),
    ]


def build_model(family, depths, dims, classes, in_chans):
    block = BlockV1 if family == "ConvNeXtV1" else BlockV2
    return ConvNeXt(block, in_chans, classes, depths, dims)


def golden(model, x32):
    """Exact answer: run in float64 on the float32-rounded params/input."""
    m64 = model.double().eval()
    with torch.no_grad():
        y = m64(x32.double())
    model.float()  # params were float32 to begin with, so this is lossless
    return y


def stats(t):
    t = t.double()
    return "min %+.3f max %+.3f mean %+.3f std %.3f" % (
        t.min().item(), t.max().item(), t.mean().item(), t.std().item())


def report_balance(model, x32):
    """Show that a residual block's branch is neither negligible nor dominant."""
    blocks = [m for m in model.modules() if isinstance(m, (BlockV1, BlockV2))]
    acts = []
    hooks = [b.register_forward_hook(lambda m, i, o: acts.append((m, i[0])))
             for b in blocks]
    with torch.no_grad():
        model.double()(x32.double())
    model.float()
    for h in hooks:
        h.remove()
    for m, inp in acts:
        with torch.no_grad():
            br = m.double().branch(inp)
        m.float()
        print("      block %s: std(input) %.3f  std(branch) %.3f"
              % (type(m).__name__, inp.std().item(), br.std().item()))


def write_case(name, model, x32):
    d = os.path.join(ROOT, name)
    os.makedirs(d, exist_ok=True)
    y = golden(model, x32)
    write_safetensors(os.path.join(d, "weights.safetensors"), model.state_dict())
    save_npy(os.path.join(d, "input.npy"), x32)
    save_npy(os.path.join(d, "output.npy"), y)
    with torch.no_grad():
        y32 = model.float().eval()(x32)
    print("  %-16s in %-16s out %-16s %s" % (name, list(x32.shape), list(y.shape), stats(y)))
    print("      fp32 forward vs golden: max abs diff %.2e" % (y32.double() - y).abs().max().item())
    report_balance(model, x32)
    return list(y.shape)


def make_all():
    manifest = []
    for name, seed, build, shape, desc, *scale in op_cases():
        torch.manual_seed(seed)
        model = build()
        randomize(model)
        x = torch.randn(*shape, dtype=torch.float32) * (scale[0] if scale else 1.0)
        out_shape = write_case(name, model, x)
        manifest.append({"name": name, "kind": "op", "input_shape": shape,
                         "output_shape": out_shape, "description": desc,
                         "keys": list(model.state_dict().keys())})
    for name, seed, fam, depths, dims, classes, in_chans, shape in model_cases():
        torch.manual_seed(seed)
        model = build_model(fam, depths, dims, classes, in_chans)
        randomize(model)
        x = torch.randn(*shape, dtype=torch.float32)
        out_shape = write_case(name, model, x)
        manifest.append({"name": name, "kind": "model", "input_shape": shape,
                         "output_shape": out_shape,
                         "description": "%s depths %s dims %s, %d classes, %d input channel(s)"
                                        % (fam, depths, dims, classes, in_chans),
                         "family": fam, "depths": depths, "dims": dims,
                         "classes": classes, "in_chans": in_chans})
    with open(os.path.join(ROOT, "manifest.json"), "w") as f:
        json.dump({"cases": manifest}, f, indent=2)
        f.write("\n")
    return manifest


# ---------------------------------------------------------------------------
# Read-back check: rebuild each case purely from the files on disk
# ---------------------------------------------------------------------------

def rebuild(entry):
    if entry["kind"] == "model":
        return build_model(entry["family"], entry["depths"], entry["dims"],
                           entry["classes"], entry["in_chans"])
    return {case[0]: case[2] for case in op_cases()}[entry["name"]]()


def verify(manifest):
    ok = True
    for entry in manifest:
        d = os.path.join(ROOT, entry["name"])
        model = rebuild(entry)
        model.load_state_dict(read_safetensors(os.path.join(d, "weights.safetensors")), strict=True)
        x = torch.from_numpy(np.load(os.path.join(d, "input.npy")))
        want = np.load(os.path.join(d, "output.npy"))
        assert x.dtype == torch.float32 and want.dtype == np.float32
        assert list(x.shape) == entry["input_shape"] and list(want.shape) == entry["output_shape"]
        got = golden(model, x).float().numpy()
        diff = float(np.abs(got - want).max())
        print("  %-16s read-back max abs diff %.1e" % (entry["name"], diff))
        ok &= diff == 0.0  # same float64 computation on the same float32 values
    return ok


def total_size(path):
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)


def main():
    torch.set_num_threads(1)  # keep float64 reductions in a fixed order
    print("writing goldens to", ROOT)
    manifest = make_all()
    print("verifying from disk")
    ok = verify(manifest)
    print("total size of %s: %d bytes (%.1f KiB)" % (ROOT, total_size(ROOT), total_size(ROOT) / 1024))
    if not ok:
        print("read-back check FAILED")
        sys.exit(1)


if __name__ == "__main__":
    main()
