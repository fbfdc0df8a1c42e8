/*
 * tinyml_edu_image.h - a camera frame -> the frame a camera model reads, exactly as
 * tinyml_edu/camera_input.py computes it on the host; and the peaks of a FOMO heatmap, exactly
 * as tinyml_edu/projects/cars.py (local_peaks) finds them.
 *
 * The model frame, in three steps:
 *   1. grayscale: a grayscale8 pixel as it is; an RGB565 pixel (high byte first, as the OV7675
 *      sends it) widened to 8 bits a channel, then ITU-R 601-2 luma in 16-bit fixed point
 *      (Pillow's convert("L")): (19595 R + 38470 G + 7471 B + 32768) >> 16;
 *   2. the largest centred square of the frame;
 *   3. scaled to size x size with Pillow's BILINEAR resize in its integer arithmetic: a
 *      triangle filter widened by the scale when shrinking, weights in 22-bit fixed point
 *      (computed once, in double precision, by tme_image_input_init), the rows first, each
 *      pass rounded to 8 bits.
 * No picture is copied: each model pixel is computed from the camera buffer when it is
 * needed and written straight into the model's input (int8 through a 256-entry table, or
 * float). tests/test_firmware.py compiles this file with g++ and checks it against Python and
 * Pillow pixel for pixel.
 *
 * Plain C99, no malloc, no libc calls: the caller owns every buffer, sized with the macros.
 */
#ifndef TINYML_EDU_IMAGE_H_
#define TINYML_EDU_IMAGE_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TME_IMAGE_OK 0
#define TME_IMAGE_BAD_SIZE (-1)   /* a size of 0, or above 65535 */
#define TME_IMAGE_BAD_FORMAT (-2) /* neither TME_PIXEL_GRAYSCALE8 nor TME_PIXEL_RGB565 */
#define TME_IMAGE_NO_ROOM (-3)    /* weights_capacity below size * TME_IMAGE_TAPS(side, size) */
#define TME_IMAGE_BAD_SCALE (-4)  /* model_settings.h: the model's input is not pixel / 255 */

/* Weights in fixed point: 1.0 is 1 << TME_IMAGE_PRECISION_BITS (Pillow's PRECISION_BITS). */
#define TME_IMAGE_PRECISION_BITS 22
/* Weights per model pixel when `in` camera pixels become `out` (Pillow's ksize). */
#define TME_IMAGE_TAPS(in, out) \
  ((in) > (out) ? (((in) + (out) - 1u) / (out)) * 2u + 1u : 3u)

typedef struct {
  uint32_t width, height; /* the camera frame */
  uint8_t format;         /* TME_PIXEL_GRAYSCALE8 or TME_PIXEL_RGB565 */
  uint32_t top, left;     /* the centred square's first row and column */
  uint32_t side;          /* and its size */
  uint32_t size;          /* the model frame: size x size */
  uint32_t taps;
  uint16_t *first;        /* size: the first square pixel each model pixel reads */
  uint16_t *count;        /* size: how many it reads */
  int32_t *weights;       /* size * taps */
} tme_image_input_t;

/* Sets up `in` for camera frames of width x height in `format` and a size x size model frame;
 * first and count hold `size` values, weights `weights_capacity` (at least
 * size * TME_IMAGE_TAPS(min(width, height), size)). Returns TME_IMAGE_OK or an error. */
int tme_image_input_init(tme_image_input_t *in, uint32_t width, uint32_t height, uint8_t format,
                         uint32_t size, uint16_t *first, uint16_t *count, int32_t *weights,
                         size_t weights_capacity);

/* The grayscale value of the camera pixel at (row, col). */
uint8_t tme_image_gray(const tme_image_input_t *in, const uint8_t *pixels, uint32_t row,
                       uint32_t col);

/* The model frame of one camera frame (`pixels`, row by row): size * size bytes into `out`. */
void tme_image_model_frame(const tme_image_input_t *in, const uint8_t *pixels, uint8_t *out);

/* The same, each model pixel v written as lut[v]: the int8 model input (tme_image_input_lut). */
void tme_image_model_input_int8(const tme_image_input_t *in, const uint8_t *pixels,
                                const int8_t *lut, int8_t *out);

/* The same as float32 v / 255 (a float model's input). */
void tme_image_model_input_float(const tme_image_input_t *in, const uint8_t *pixels,
                                 float *out);

/* lut[v] for v = 0..255: the int8 model input of pixel v, tme_quantize_int8(v / 255.0f,
 * scale, zero_point), as the host quantizes pixel / 255 (runtime.quantize_input). */
void tme_image_input_lut(int8_t *lut, float scale, int32_t zero_point);

/* The cells of a rows x cols heatmap (row by row) whose value is above `threshold` (compared
 * in double, as on the host) and the highest of their 3 x 3 neighbourhood; of two equal
 * neighbours only the first (row, then column) counts. peaks[i] = 1 for such a cell, else 0.
 * Returns how many there are. */
uint32_t tme_image_peaks(const float *heat, uint32_t rows, uint32_t cols, double threshold,
                         uint8_t *peaks);

#ifdef __cplusplus
}
#endif

#endif /* TINYML_EDU_IMAGE_H_ */
