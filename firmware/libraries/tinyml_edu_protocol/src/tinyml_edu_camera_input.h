/*
 * tinyml_edu_camera_input.h - a camera model's input as model_settings.h describes it.
 *
 * Include it (C or C++) after model_settings.h, once per program: tme_camera_input_setup sizes
 * the tables of tinyml_edu_image.h from the CAMERA_* and FEATURE_FRAME settings that tinyml-edu
 * deploy wrote (tinyml_edu.camera_input.sketch_settings) and fills a tme_camera_input_t; then
 * tme_camera_input_int8 turns one camera frame into the model's int8 input: grayscale, the
 * centred square, Pillow's bilinear resize to FEATURE_FRAME x FEATURE_FRAME, pixel / 255,
 * quantized. tests/test_firmware.py runs this code with g++ against the host's input.
 */
#ifndef TINYML_EDU_CAMERA_INPUT_H_
#define TINYML_EDU_CAMERA_INPUT_H_

#include "tinyml_edu_image.h"
#include "tinyml_edu_protocol.h"

#if !defined(FEATURE_FRAME) || !defined(CAMERA_WIDTH) || !defined(CAMERA_HEIGHT) || \
    !defined(CAMERA_GRAYSCALE)
#error "include model_settings.h (a camera model's, with FEATURE_FRAME and CAMERA_*) first"
#endif

#if CAMERA_GRAYSCALE
#define TME_CAMERA_INPUT_FORMAT TME_PIXEL_GRAYSCALE8
#else
#define TME_CAMERA_INPUT_FORMAT TME_PIXEL_RGB565
#endif
/* The camera buffer: CAMERA_WIDTH x CAMERA_HEIGHT pixels (what the fit table counts). */
#define TME_CAMERA_INPUT_FRAME_BYTES \
  TME_CAMERA_PIXEL_BYTES(CAMERA_WIDTH, CAMERA_HEIGHT, TME_CAMERA_INPUT_FORMAT)
#define TME_CAMERA_INPUT_SIDE (CAMERA_WIDTH < CAMERA_HEIGHT ? CAMERA_WIDTH : CAMERA_HEIGHT)
#define TME_CAMERA_INPUT_PIXELS ((uint32_t)FEATURE_FRAME * (uint32_t)FEATURE_FRAME)

typedef struct {
  tme_image_input_t image;
  int8_t lut[256]; /* model pixel -> int8 input */
} tme_camera_input_t;

/* Fills `in` from model_settings.h, with tables of its own, for a model whose int8 input has
 * this scale and zero point. Returns TME_IMAGE_OK, an error of tme_image_input_init, or
 * TME_IMAGE_BAD_SCALE when FEATURE_SCALE is not 1/255. */
static inline int tme_camera_input_setup(tme_camera_input_t *in, float input_scale,
                                  int32_t input_zero_point) {
  static uint16_t first[FEATURE_FRAME];
  static uint16_t count[FEATURE_FRAME];
  static int32_t weights[(uint32_t)FEATURE_FRAME *
                         TME_IMAGE_TAPS((uint32_t)TME_CAMERA_INPUT_SIDE, (uint32_t)FEATURE_FRAME)];
  tme_image_input_lut(in->lut, input_scale, input_zero_point);
#if defined(FEATURE_SCALE)
  {
    const float one = FEATURE_SCALE * 255.0f; /* the projects' features: pixel / 255 */
    if (one < 0.99999f || one > 1.00001f) return TME_IMAGE_BAD_SCALE;
  }
#endif
  return tme_image_input_init(&in->image, CAMERA_WIDTH, CAMERA_HEIGHT, TME_CAMERA_INPUT_FORMAT,
                              FEATURE_FRAME, first, count, weights,
                              sizeof weights / sizeof weights[0]);
}

/* One camera frame (TME_CAMERA_INPUT_FRAME_BYTES) -> the model's int8 input
 * (TME_CAMERA_INPUT_PIXELS values). */
static inline void tme_camera_input_int8(const tme_camera_input_t *in, const uint8_t *frame,
                                  int8_t *input) {
  tme_image_model_input_int8(&in->image, frame, in->lut, input);
}

#endif /* TINYML_EDU_CAMERA_INPUT_H_ */
