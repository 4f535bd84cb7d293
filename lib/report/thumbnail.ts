/**
 * One small JPEG of a sample's image for report.html's gallery: decoded by sharp, turned upright by its EXIF
 * orientation (the pipeline scores images as stored, but people look at them upright), shrunk to fit a square
 * (never enlarged), flattened on white (JPEG has no alpha) and written without metadata (sharp strips it unless
 * asked to keep it). Loaded only when a gallery is drawn (see ./gallery.ts), so CPU workers do not load sharp
 * by importing the report.
 */
import sharp from 'sharp';

export interface ThumbnailOptions {
  /** Longest side in pixels. */
  longSide: number;
  /** JPEG quality. */
  quality: number;
}

export interface ThumbnailImage {
  /** `data:image/jpeg;base64,...` */
  dataUri: string;
  width: number;
  height: number;
  /** JPEG bytes (before base64). */
  bytes: number;
}

export async function makeThumbnail(image: Buffer, opts: ThumbnailOptions): Promise<ThumbnailImage> {
  const { data, info } = await sharp(image)
    .autoOrient()
    .resize(opts.longSide, opts.longSide, { fit: 'inside', withoutEnlargement: true })
    .flatten({ background: '#ffffff' })
    .jpeg({ quality: opts.quality, mozjpeg: true })
    .toBuffer({ resolveWithObject: true });
  return { dataUri: `data:image/jpeg;base64,${data.toString('base64')}`, width: info.width, height: info.height, bytes: data.length };
}
