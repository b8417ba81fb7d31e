#!/usr/bin/python3
"""Makes the image fixtures of test/image: a few synthetic images and what torchvision's ImageNet
evaluation transform makes of them. Needs Debian's python3-torchvision (0.14) and python3-pil.

    /usr/bin/python3 test/image/make-fixtures.py

Writes into test/fixtures/images/:
  shapes.png        333x250 RGBA (landscape, odd sizes; the alpha varies and must be dropped)
  portrait.jpg      240x320 RGB JPEG, quality 90, 4:2:0 chroma (what cameras write)
  gray.png          200x150 grayscale (PIL's convert('RGB') copies it to three channels)
  NAME.crop224.png  Resize(256, bicubic) + CenterCrop(224) of NAME, the bytes torchvision feeds
                    to ToTensor (a PNG: lossless, and small for these smooth images)
  NAME.t64.npy      the whole transform at crop 64 (Resize(73), as --size 64 asks): float32 NCHW
"""
import math
import os

import numpy as np
import torch
from PIL import Image, ImageDraw
from torchvision import transforms
from torchvision.transforms import InterpolationMode

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fixtures', 'images')
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def scene(width, height, seed):
    """Smooth gradients, hard-edged shapes and a fine checker: every part of a resize kernel."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 127 + 120 * np.sin(x / width * 2 * math.pi * 1.5 + seed)
    g = 255 * y / (height - 1)
    b = 127 + 120 * np.cos((x + y) / (width + height) * 2 * math.pi * 2)
    rgb = np.stack([r, g, b], axis=-1)
    checker = ((x.astype(int) // 3 + y.astype(int) // 3) % 2 == 0) & (x < width / 4) & (y > height * 0.6)
    rgb[checker] = [250, 250, 250]
    image = Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8), 'RGB')
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        cx, cy = rng.integers(0, width), rng.integers(0, height)
        radius = int(rng.integers(8, max(9, min(width, height) // 4)))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=colour)
    draw.line([(0, height - 1), (width - 1, 0)], fill=(0, 0, 0), width=3)
    return image


def transform(crop, tensor):
    resize = crop * 256 // 224
    steps = [transforms.Resize(resize, interpolation=InterpolationMode.BICUBIC), transforms.CenterCrop(crop)]
    if tensor:
        steps += [transforms.ToTensor(), transforms.Normalize(MEAN, STD)]
    return transforms.Compose(steps)


def write_npy(path, array):
    np.save(path, np.ascontiguousarray(array, dtype='<f4'))


def main():
    os.makedirs(OUT, exist_ok=True)
    shapes = scene(333, 250, 1).convert('RGBA')
    alpha = np.fromfunction(lambda y, x: (x * 255 / 332), (250, 333)).astype(np.uint8)
    shapes.putalpha(Image.fromarray(alpha, 'L'))
    shapes.save(os.path.join(OUT, 'shapes.png'), optimize=True)
    scene(240, 320, 2).save(os.path.join(OUT, 'portrait.jpg'), quality=90, subsampling=2)
    scene(200, 150, 3).convert('L').save(os.path.join(OUT, 'gray.png'), optimize=True)

    for name in ['shapes.png', 'portrait.jpg', 'gray.png']:
        stem = name.rsplit('.', 1)[0]
        # As torchvision's ImageFolder loads an image: PIL, converted to RGB.
        with Image.open(os.path.join(OUT, name)) as opened:
            image = opened.convert('RGB')
        transform(224, False)(image).save(os.path.join(OUT, f'{stem}.crop224.png'), optimize=True)
        tensor = transform(64, True)(image).unsqueeze(0)
        assert tensor.dtype == torch.float32
        write_npy(os.path.join(OUT, f'{stem}.t64.npy'), tensor.numpy())
    print(f'wrote the image fixtures to {os.path.normpath(OUT)}')


if __name__ == '__main__':
    main()
