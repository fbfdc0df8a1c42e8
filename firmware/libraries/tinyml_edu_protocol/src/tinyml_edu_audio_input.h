/*
 * tinyml_edu_audio_input.h - the model's audio input as model_settings.h describes it.
 *
 * Include it (C++) after model_settings.h, once per program: it sizes the front end's buffers
 * from the FEATURE_* settings that tinyml-edu export wrote and fills a tme_audio_input_t with
 * them. The inference sketch and the emulated Cortex-M4's harness (tinyml-edu verify --on
 * cortex-m4) both call tme_audio_input_setup, so the board is checked on the sketch's code.
 */
#ifndef TINYML_EDU_AUDIO_INPUT_H_
#define TINYML_EDU_AUDIO_INPUT_H_

#include <string.h>

#include "tinyml_edu_dsp.h"

#if !defined(FEATURE_KIND) || !defined(FEATURE_NUM_CHANNELS) || !defined(FEATURE_FFT_SIZE)
#error "include model_settings.h (an audio model's, with FEATURE_KIND) before this header"
#endif

static const uint32_t kTmeAudioInputMax =
    (uint32_t)FEATURE_NUM_FRAMES * (uint32_t)FEATURE_NUM_CHANNELS;  /* log-mel >= MFCC */

/* Fills `in` from model_settings.h with buffers of its own; returns TME_DSP_OK or an error
 * of tme_audio_input_init, or TME_DSP_BAD_NORM. */
static int tme_audio_input_setup(tme_audio_input_t *in) {
  static float hann[FEATURE_WINDOW_SAMPLES];
  static float twiddle[FEATURE_FFT_SIZE];
  static float fft[FEATURE_FFT_SIZE];
  static float power[FEATURE_FFT_SIZE / 2 + 1];
  static float weights[TME_MEL_WEIGHTS_MAX(FEATURE_FFT_SIZE)];
  static uint16_t first_bin[FEATURE_NUM_CHANNELS];
  static uint16_t bin_count[FEATURE_NUM_CHANNELS];
  static float dct[FEATURE_NUM_MFCC * FEATURE_NUM_CHANNELS];
  static float row[FEATURE_NUM_CHANNELS];
  memset(in, 0, sizeof *in);
  in->mel.sample_rate = FEATURE_SAMPLE_RATE;
  in->mel.window_samples = FEATURE_WINDOW_SAMPLES;
  in->mel.fft_size = FEATURE_FFT_SIZE;
  in->mel.num_channels = FEATURE_NUM_CHANNELS;
  in->mel.lower_hz = FEATURE_LOWER_HZ;
  in->mel.upper_hz = FEATURE_UPPER_HZ;
  in->mel.log_floor = FEATURE_LOG_FLOOR;
  in->mel.hann = hann;
  in->mel.twiddle = twiddle;
  in->mel.fft = fft;
  in->mel.power = power;
  in->mel.weights = weights;
  in->mel.weights_capacity = TME_MEL_WEIGHTS_MAX(FEATURE_FFT_SIZE);
  in->mel.first_bin = first_bin;
  in->mel.bin_count = bin_count;
  in->num_frames = FEATURE_NUM_FRAMES;
  in->stride_samples = FEATURE_STRIDE_SAMPLES;
  in->num_mfcc = strcmp(FEATURE_KIND, "mfcc") == 0 ? FEATURE_NUM_MFCC : 0;
  in->dct = dct;
  in->row = row;
  in->subtract_clip_mean = 0;
  in->input_scale = 1.0f;
#if defined(FEATURE_NORM)
  if (strcmp(FEATURE_NORM, "clip_mean") == 0) {
    in->subtract_clip_mean = 1;
  } else if (strcmp(FEATURE_NORM, "none") != 0) {
    return TME_DSP_BAD_NORM;
  }
#endif
#if defined(FEATURE_INPUT_SCALE)
  in->input_scale = FEATURE_INPUT_SCALE;
#endif
  return tme_audio_input_init(in);
}

#endif /* TINYML_EDU_AUDIO_INPUT_H_ */
