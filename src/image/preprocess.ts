// The ImageNet evaluation transform of the official ConvNeXt models, as torchvision applies it to
// a PIL image: Resize(shorter side to 256, bicubic) + CenterCrop(224) + ToTensor + Normalize.
// The resize is Pillow's: a separable convolution with the bicubic kernel (a = -0.5) widened by
// the downscale factor (so it antialiases), coefficients rounded to 22-bit fixed point, rows
// first, each pass rounded and clamped to 8 bits. Doing the same integer arithmetic gives the
// same bytes as torchvision, not merely close ones. Imports nothing from Node: the browser
// example loads this file as it is.

/** Decoded pixels, row-major, interleaved RGB or RGBA (the alpha is dropped, as PIL's convert('RGB') does). */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  readonly channels: 3 | 4;
  readonly data: Uint8Array | Uint8ClampedArray;
}

/** A float32 NCHW tensor of batch 1. */
export interface ImageTensor {
  readonly shape: readonly [1, 3, number, number];
  readonly data: Float32Array;
}

/** torchvision's ImageNet normalisation (ToTensor's /255, then these per channel). */
export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

/** The eval crop is 224 of a 256 resize: for another crop size the shorter side keeps that ratio. */
export function resizeSizeFor(crop: number): number {
  return Math.floor((crop * 256) / 224);
}

const PRECISION_BITS = 32 - 8 - 2;

function bicubic(x: number): number {
  const a = -0.5;
  const t = Math.abs(x);
  if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
  return 0;
}

/** One output pixel's taps: the first input index and fixed-point weights. */
interface Taps {
  readonly first: number;
  readonly weights: Int32Array;
}

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc for one axis. */
function axisTaps(inSize: number, outSize: number): Taps[] {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 2 * filterScale;
  const taps: Taps[] = [];
  for (let out = 0; out < outSize; out++) {
    const center = (out + 0.5) * scale;
    // C's (int) truncates toward zero.
    const first = Math.max(0, Math.trunc(center - support + 0.5));
    const end = Math.min(inSize, Math.trunc(center + support + 0.5));
    const raw: number[] = [];
    let total = 0;
    for (let x = first; x < end; x++) {
      const w = bicubic((x - center + 0.5) * (1 / filterScale));
      raw.push(w);
      total += w;
    }
    const weights = new Int32Array(raw.length);
    for (let i = 0; i < raw.length; i++) {
      const k = total === 0 ? raw[i] : raw[i] / total;
      weights[i] = Math.trunc(k < 0 ? -0.5 + k * 2 ** PRECISION_BITS : 0.5 + k * 2 ** PRECISION_BITS);
    }
    taps.push({ first, weights });
  }
  return taps;
}

function clip8(sum: number): number {
  const v = Math.floor(sum / 2 ** PRECISION_BITS);
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** Resizes packed RGB bytes (width x height x 3) to outWidth x outHeight as Pillow's BICUBIC does. */
export function resizeBicubic(rgb: Uint8Array, width: number, height: number, outWidth: number, outHeight: number): Uint8Array {
  let current = rgb;
  let w = width;
  // Pillow skips a pass whose size does not change.
  if (outWidth !== width) {
    const taps = axisTaps(width, outWidth);
    const next = new Uint8Array(outWidth * height * 3);
    for (let y = 0; y < height; y++) {
      const row = y * width * 3;
      for (let x = 0; x < outWidth; x++) {
        const { first, weights } = taps[x];
        for (let c = 0; c < 3; c++) {
          let sum = 2 ** (PRECISION_BITS - 1);
          for (let i = 0; i < weights.length; i++) sum += current[row + (first + i) * 3 + c] * weights[i];
          next[(y * outWidth + x) * 3 + c] = clip8(sum);
        }
      }
    }
    current = next;
    w = outWidth;
  }
  if (outHeight !== height) {
    const taps = axisTaps(height, outHeight);
    const next = new Uint8Array(w * outHeight * 3);
    for (let y = 0; y < outHeight; y++) {
      const { first, weights } = taps[y];
      for (let x = 0; x < w * 3; x++) {
        let sum = 2 ** (PRECISION_BITS - 1);
        for (let i = 0; i < weights.length; i++) sum += current[(first + i) * w * 3 + x] * weights[i];
        next[y * w * 3 + x] = clip8(sum);
      }
    }
    current = next;
  }
  return current;
}

/** Python's round(): halves to even, as torchvision's CenterCrop offsets use it. */
function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const fraction = x - floor;
  if (fraction !== 0.5) return Math.round(x);
  return floor % 2 === 0 ? floor : floor + 1;
}

/** The resized (shorter side to `resize`) and centre-cropped RGB bytes, `crop` x `crop` x 3. */
export function resizeAndCrop(image: RgbImage, resize: number, crop: number): Uint8Array {
  const { width, height, channels, data } = image;
  if (!(width >= 1 && height >= 1)) throw new Error(`the image has no pixels (${width}x${height})`);
  if (data.length !== width * height * channels) throw new Error(`the pixel buffer holds ${data.length} bytes, not ${width}x${height}x${channels}`);
  const rgb = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    rgb[p * 3] = data[p * channels];
    rgb[p * 3 + 1] = data[p * channels + 1];
    rgb[p * 3 + 2] = data[p * channels + 2];
  }
  // torchvision's Resize(int): the shorter side becomes `resize`, the longer int(resize * long / short).
  const [outWidth, outHeight] =
    width <= height ? [resize, Math.trunc((resize * height) / width)] : [Math.trunc((resize * width) / height), resize];
  const resized = resizeBicubic(rgb, width, height, outWidth, outHeight);
  if (outWidth < crop || outHeight < crop) throw new Error(`the resized image (${outWidth}x${outHeight}) is smaller than the ${crop}x${crop} crop`);
  const top = roundHalfEven((outHeight - crop) / 2);
  const left = roundHalfEven((outWidth - crop) / 2);
  const out = new Uint8Array(crop * crop * 3);
  for (let y = 0; y < crop; y++) {
    const from = ((top + y) * outWidth + left) * 3;
    out.set(resized.subarray(from, from + crop * 3), y * crop * 3);
  }
  return out;
}

/**
 * The evaluation transform: shorter side to resizeSizeFor(size) (256 for 224), bicubic; centre
 * crop size x size; ImageNet mean and std. NCHW float32, batch 1.
 */
export function imagenetEval(image: RgbImage, size = 224): ImageTensor {
  if (!Number.isInteger(size) || size < 1) throw new Error(`the crop size must be a positive integer, not ${size}`);
  const crop = resizeAndCrop(image, resizeSizeFor(size), size);
  const plane = size * size;
  const data = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    // As torchvision computes it: ToTensor divides in f32, Normalize subtracts and divides in f32.
    const mean = Math.fround(IMAGENET_MEAN[c]);
    const std = Math.fround(IMAGENET_STD[c]);
    for (let p = 0; p < plane; p++) data[c * plane + p] = Math.fround(Math.fround(crop[p * 3 + c] / 255) - mean) / std;
  }
  return { shape: [1, 3, size, size], data };
}
