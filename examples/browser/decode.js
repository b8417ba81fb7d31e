// Decoding an image file to RGBA bytes in the browser, exactly as the file holds them.
//
// The usual route, drawing an ImageBitmap on a canvas and reading getImageData, is exact only
// for opaque pixels: a 2D canvas stores colours premultiplied by alpha, so a translucent pixel
// comes back with rounded colour, and a transparent one black. The preprocessing drops alpha
// without compositing (as PIL's convert('RGB') does), so it needs the colour as stored. WebGPU
// keeps it: copyExternalImageToTexture from an ImageBitmap made without premultiplying, into a
// texture asked not to premultiply either, copies the bytes unchanged, and the texture is read
// back through a buffer. colorSpaceConversion 'none' ignores any embedded colour profile, as
// PIL and torchvision do.

/**
 * The pixels of `blob` (a PNG, JPEG, WebP... file) as { width, height, channels: 4, data }.
 * Throws an Error saying why where the browser cannot decode it or the device cannot hold it.
 */
export async function decodeImage(device, blob) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  } catch (error) {
    throw new Error(`the browser cannot decode it as an image (${error.message})`);
  }
  const { width, height } = bitmap;
  const side = device.limits.maxTextureDimension2D;
  if (width > side || height > side) {
    bitmap.close();
    throw new Error(`the image is ${width}x${height}; this WebGPU device takes at most ${side} pixels a side`);
  }
  const texture = device.createTexture({
    size: [width, height],
    format: 'rgba8unorm',
    // RENDER_ATTACHMENT: copyExternalImageToTexture may write the texture by drawing to it.
    usage: GPUTextureUsage.COPY_DST | GPUTextureUsage.COPY_SRC | GPUTextureUsage.RENDER_ATTACHMENT,
  });
  // Texture-to-buffer copies need rows aligned to 256 bytes.
  const bytesPerRow = Math.ceil((width * 4) / 256) * 256;
  const buffer = device.createBuffer({ size: bytesPerRow * height, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ });
  try {
    device.queue.copyExternalImageToTexture({ source: bitmap }, { texture, premultipliedAlpha: false }, [width, height]);
    const encoder = device.createCommandEncoder();
    encoder.copyTextureToBuffer({ texture }, { buffer, bytesPerRow }, [width, height]);
    device.queue.submit([encoder.finish()]);
    await buffer.mapAsync(GPUMapMode.READ);
    const rows = new Uint8Array(buffer.getMappedRange());
    const data = new Uint8Array(width * height * 4);
    for (let y = 0; y < height; y++) data.set(rows.subarray(y * bytesPerRow, y * bytesPerRow + width * 4), y * width * 4);
    buffer.unmap();
    return { width, height, channels: 4, data };
  } finally {
    bitmap.close();
    texture.destroy();
    buffer.destroy();
  }
}
