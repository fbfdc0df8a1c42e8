/*
 * tinyml_edu_image.c - see tinyml_edu_image.h. Plain C99; the weights are computed in double
 * precision in the order of Pillow's precompute_coeffs and normalize_coeffs_8bpc
 * (libImaging/Resample.c), so they are Pillow's to the last bit, on the board's soft double
 * as on the host.
 */
#include "tinyml_edu_image.h"

#include "tinyml_edu_dsp.h"
#include "tinyml_edu_protocol.h"

static double tme_triangle(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

int tme_image_input_init(tme_image_input_t *in, uint32_t width, uint32_t height, uint8_t format,
                         uint32_t size, uint16_t *first, uint16_t *count, int32_t *weights,
                         size_t weights_capacity) {
  uint32_t side, taps, xx, x;
  double scale, filterscale, support, ss;
  if (width == 0 || height == 0 || size == 0 || width > 65535u || height > 65535u ||
      size > 65535u) {
    return TME_IMAGE_BAD_SIZE;
  }
  if (format != TME_PIXEL_GRAYSCALE8 && format != TME_PIXEL_RGB565) return TME_IMAGE_BAD_FORMAT;
  side = width < height ? width : height;
  taps = TME_IMAGE_TAPS(side, size);
  if ((size_t)size * taps > weights_capacity) return TME_IMAGE_NO_ROOM;
  in->width = width;
  in->height = height;
  in->format = format;
  in->side = side;
  in->top = (height - side) / 2u;
  in->left = (width - side) / 2u;
  in->size = size;
  in->taps = taps;
  in->first = first;
  in->count = count;
  in->weights = weights;

  scale = (double)side / (double)size;
  filterscale = scale < 1.0 ? 1.0 : scale;
  support = 1.0 * filterscale;
  ss = 1.0 / filterscale;
  for (xx = 0; xx < size; ++xx) {
    const double center = 0.0 + ((double)xx + 0.5) * scale;
    double ww = 0.0;
    int32_t xmin = (int32_t)(center - support + 0.5); /* truncation, as Pillow's cast */
    int32_t xmax = (int32_t)(center + support + 0.5);
    int32_t *w = weights + (size_t)xx * taps;
    if (xmin < 0) xmin = 0;
    if (xmax > (int32_t)side) xmax = (int32_t)side;
    xmax -= xmin;
    for (x = 0; x < (uint32_t)xmax; ++x) {
      ww += tme_triangle(((double)((int32_t)x + xmin) - center + 0.5) * ss);
    }
    for (x = 0; x < taps; ++x) {
      double v = 0.0;
      if (x < (uint32_t)xmax) {
        v = tme_triangle(((double)((int32_t)x + xmin) - center + 0.5) * ss);
        if (ww != 0.0) v /= ww;
      }
      w[x] = v < 0.0 ? (int32_t)(-0.5 + v * (double)(1L << TME_IMAGE_PRECISION_BITS))
                     : (int32_t)(0.5 + v * (double)(1L << TME_IMAGE_PRECISION_BITS));
    }
    first[xx] = (uint16_t)xmin;
    count[xx] = (uint16_t)xmax;
  }
  return TME_IMAGE_OK;
}

uint8_t tme_image_gray(const tme_image_input_t *in, const uint8_t *pixels, uint32_t row,
                       uint32_t col) {
  const size_t i = (size_t)row * in->width + col;
  uint32_t v, r, g, b;
  if (in->format == TME_PIXEL_GRAYSCALE8) return pixels[i];
  v = ((uint32_t)pixels[2 * i] << 8) | pixels[2 * i + 1]; /* RGB565, high byte first */
  r = v >> 11;
  g = (v >> 5) & 0x3Fu;
  b = v & 0x1Fu;
  r = (r << 3) | (r >> 2); /* widened as protocol.rgb565_to_rgb */
  g = (g << 2) | (g >> 4);
  b = (b << 3) | (b >> 2);
  return (uint8_t)((r * 19595u + g * 38470u + b * 7471u + 0x8000u) >> 16);
}

static uint8_t tme_clip8(int32_t acc) {
  const int32_t v = acc >> TME_IMAGE_PRECISION_BITS; /* acc >= 0: the weights are >= 0 */
  return (uint8_t)(v < 0 ? 0 : (v > 255 ? 255 : v));
}

/* Model pixel (yy, xx): the vertical pass over the horizontal pass's rounded values. */
static uint8_t tme_model_pixel(const tme_image_input_t *in, const uint8_t *pixels, uint32_t yy,
                               uint32_t xx) {
  const int32_t half = (int32_t)1 << (TME_IMAGE_PRECISION_BITS - 1);
  const int32_t *wy = in->weights + (size_t)yy * in->taps;
  const int32_t *wx = in->weights + (size_t)xx * in->taps;
  const uint32_t y0 = in->first[yy], ny = in->count[yy];
  const uint32_t x0 = in->first[xx], nx = in->count[xx];
  int32_t acc = half;
  uint32_t y, x;
  for (y = 0; y < ny; ++y) {
    const uint32_t row = in->top + y0 + y;
    int32_t h = half;
    for (x = 0; x < nx; ++x) {
      h += (int32_t)tme_image_gray(in, pixels, row, in->left + x0 + x) * wx[x];
    }
    acc += (int32_t)tme_clip8(h) * wy[y];
  }
  return tme_clip8(acc);
}

void tme_image_model_frame(const tme_image_input_t *in, const uint8_t *pixels, uint8_t *out) {
  uint32_t yy, xx;
  for (yy = 0; yy < in->size; ++yy) {
    for (xx = 0; xx < in->size; ++xx) *out++ = tme_model_pixel(in, pixels, yy, xx);
  }
}

void tme_image_model_input_int8(const tme_image_input_t *in, const uint8_t *pixels,
                                const int8_t *lut, int8_t *out) {
  uint32_t yy, xx;
  for (yy = 0; yy < in->size; ++yy) {
    for (xx = 0; xx < in->size; ++xx) *out++ = lut[tme_model_pixel(in, pixels, yy, xx)];
  }
}

void tme_image_model_input_float(const tme_image_input_t *in, const uint8_t *pixels,
                                 float *out) {
  uint32_t yy, xx;
  for (yy = 0; yy < in->size; ++yy) {
    for (xx = 0; xx < in->size; ++xx) {
      *out++ = (float)tme_model_pixel(in, pixels, yy, xx) / 255.0f;
    }
  }
}

void tme_image_input_lut(int8_t *lut, float scale, int32_t zero_point) {
  uint32_t v;
  for (v = 0; v < 256u; ++v) lut[v] = tme_quantize_int8((float)v / 255.0f, scale, zero_point);
}

uint32_t tme_image_peaks(const float *heat, uint32_t rows, uint32_t cols, double threshold,
                         uint8_t *peaks) {
  uint32_t r, c, found = 0;
  int dr, dc;
  for (r = 0; r < rows; ++r) {
    for (c = 0; c < cols; ++c) {
      const float p = heat[(size_t)r * cols + c];
      int peak = (double)p > threshold;
      for (dr = -1; dr <= 1 && peak; ++dr) {
        for (dc = -1; dc <= 1 && peak; ++dc) {
          const int32_t rr = (int32_t)r + dr, cc = (int32_t)c + dc;
          float other;
          if ((dr == 0 && dc == 0) || rr < 0 || cc < 0 || rr >= (int32_t)rows ||
              cc >= (int32_t)cols) {
            continue;
          }
          other = heat[(size_t)rr * cols + (size_t)cc];
          /* Earlier neighbours (the row above, the cell to the left) must be lower. */
          peak = (dr < 0 || (dr == 0 && dc < 0)) ? p > other : p >= other;
        }
      }
      peaks[(size_t)r * cols + c] = (uint8_t)peak;
      found += (uint32_t)peak;
    }
  }
  return found;
}
