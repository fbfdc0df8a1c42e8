/*
 * tinyml_edu_imu_input.h - the model's IMU input as model_settings.h describes it.
 *
 * Include it (C or C++) after model_settings.h: tme_imu_input_setup fills a tme_imu_input_t
 * from the FEATURE_* settings that tinyml-edu export wrote (channel order, full scales, the
 * derived "amag" channel). The inference sketch and the emulated Cortex-M4's harness
 * (tinyml-edu verify --on cortex-m4) both call it, so the board is checked on the sketch's
 * code. Needs no Arduino: the IMU itself is read by tinyml_edu_imu.h.
 */
#ifndef TINYML_EDU_IMU_INPUT_H_
#define TINYML_EDU_IMU_INPUT_H_

#include "tinyml_edu_dsp.h"

#if !defined(FEATURE_WINDOW) || !defined(FEATURE_NUM_CHANNELS) || \
    !defined(FEATURE_ACCEL_RANGE_G) || !defined(FEATURE_GYRO_RANGE_DPS)
#error "include model_settings.h (an IMU model's, with FEATURE_WINDOW) before this header"
#endif
#if FEATURE_NUM_CHANNELS > TME_IMU_MAX_CHANNELS
#error "FEATURE_NUM_CHANNELS is more than tinyml_edu_dsp.h's TME_IMU_MAX_CHANNELS"
#endif

/* Returns TME_DSP_OK, or TME_DSP_BAD_CHANNELS / TME_DSP_BAD_RANGE of tme_imu_input_init. */
static int tme_imu_input_setup(tme_imu_input_t *in) {
#if defined(FEATURE_CHANNELS)
  const char *channels = FEATURE_CHANNELS;
#else
  const char *channels = "ax,ay,az,gx,gy,gz"; /* ImuFeatureParams' default */
#endif
#if defined(FEATURE_DERIVED_CHANNELS)
  const char *derived = FEATURE_DERIVED_CHANNELS;
#else
  const char *derived = "";
#endif
#if defined(FEATURE_AMAG_OFFSET_G)
  const float amag_offset_g = FEATURE_AMAG_OFFSET_G;
#else
  const float amag_offset_g = 0.0f;
#endif
  return tme_imu_input_init(in, channels, derived, FEATURE_NUM_CHANNELS, FEATURE_ACCEL_RANGE_G,
                            FEATURE_GYRO_RANGE_DPS, amag_offset_g);
}

#endif /* TINYML_EDU_IMU_INPUT_H_ */
