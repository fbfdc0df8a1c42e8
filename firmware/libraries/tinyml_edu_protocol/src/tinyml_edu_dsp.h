/*
 * tinyml_edu_dsp.h - the audio front end of tinyml_edu/features.py, for the board.
 *
 * Per frame, exactly the steps of features.py: periodic Hann window -> zero-pad to
 * fft_size -> power spectrum |rfft|^2 -> triangular HTK-mel filterbank (evaluated at the
 * exact bin frequencies, built once at start-up) -> log(max(x, log_floor)) [-> orthonormal
 * DCT-II for MFCC]. Python computes in float64, the board in float32: the log-mel values
 * agree to about 1e-4 (tests/test_firmware.py checks this on the host).
 *
 * Also: a radix-2 real FFT, a decimating FIR low-pass (16 kHz microphone -> 8 kHz models) and
 * a lock-free single-producer/single-consumer ring of int16 samples (microphone interrupt or
 * task -> loop()).
 *
 * Plain C99 with <math.h> (only at start-up, plus logf per mel value); no malloc: the caller
 * owns every buffer, sized with the TME_* macros below.
 */
#ifndef TINYML_EDU_DSP_H_
#define TINYML_EDU_DSP_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------
 * Real FFT of n real samples (n a power of two, 4..65536): a complex FFT of n/2 points on
 * the even/odd samples, then the split step. */

/* twiddle: n floats (cos and sin of 2*pi*k/n for k < n/2, interleaved). Returns 0, or -1
 * if n is not a power of two in range. */
int tme_rfft_init(float *twiddle, uint32_t n);

/* buf: n real samples, destroyed. power: n/2 + 1 values |X[k]|^2, k = 0..n/2. */
void tme_rfft_power(float *buf, uint32_t n, const float *twiddle, float *power);

/* ---------------------------------------------------------------------------------------
 * Log-mel spectrogram frames. */

/* Filter weights: every FFT bin lies in at most two triangles. */
#define TME_MEL_WEIGHTS_MAX(fft_size) (2u * ((fft_size) / 2u + 1u))

typedef struct {
  /* Settings: set these before tme_logmel_init (same names as AudioFeatureParams). */
  uint32_t sample_rate;
  uint32_t window_samples; /* <= fft_size */
  uint32_t fft_size;       /* power of two */
  uint32_t num_channels;
  float lower_hz;
  float upper_hz;
  float log_floor;
  /* Buffers the caller provides. */
  float *hann;          /* window_samples */
  float *twiddle;       /* fft_size */
  float *fft;           /* fft_size */
  float *power;         /* fft_size / 2 + 1 */
  float *weights;       /* weights_capacity, at least TME_MEL_WEIGHTS_MAX(fft_size) */
  uint32_t weights_capacity;
  uint16_t *first_bin;  /* num_channels */
  uint16_t *bin_count;  /* num_channels */
} tme_logmel_t;

/* Errors of tme_logmel_init. */
#define TME_DSP_OK 0
#define TME_DSP_BAD_SIZE (-1)      /* fft_size not a power of two, or window > fft_size */
#define TME_DSP_BAD_RANGE (-2)     /* need 0 <= lower_hz < upper_hz <= sample_rate / 2 */
#define TME_DSP_EMPTY_CHANNEL (-3) /* a mel channel covers no FFT bin */
#define TME_DSP_NO_ROOM (-4)       /* weights_capacity too small */
#define TME_DSP_BAD_NORM (-5)      /* model_settings.h: norm neither "clip_mean" nor "none" */

/* Builds the window, the FFT twiddles and the filterbank. */
int tme_logmel_init(tme_logmel_t *mel);

/* One frame: window_samples int16 samples starting at ring[start % ring_len] (wrapping
 * around the end of the ring; pass ring_len = length of a plain array), scaled by 1/32768
 * like features.to_float_audio -> num_channels log-mel values in out. */
void tme_logmel_frame(tme_logmel_t *mel, const int16_t *ring, uint32_t ring_len,
                      uint32_t start, float *out);

/* Orthonormal DCT-II (features.dct_matrix): matrix holds num_coeffs * num_inputs floats. */
void tme_dct_init(float *matrix, uint32_t num_coeffs, uint32_t num_inputs);
void tme_dct_apply(const float *matrix, uint32_t num_coeffs, uint32_t num_inputs,
                   const float *in, float *out);

/* ---------------------------------------------------------------------------------------
 * A model's audio input: what the inference sketch computes for one clip, and what the
 * emulated Cortex-M4 (tinyml-edu verify --on cortex-m4) runs to check it. Every frame's
 * log-mel (or MFCC) values, then the training normalisation of the run's feature_params:
 * norm "clip_mean" subtracts the mean of all the clip's values (summed in double, as numpy
 * does in float64), then input_scale multiplies. tinyml_edu_audio_input.h fills this from
 * model_settings.h. */

typedef struct {
  tme_logmel_t mel;        /* settings and buffers, as for tme_logmel_init */
  uint32_t num_frames;     /* FEATURE_NUM_FRAMES */
  uint32_t stride_samples; /* FEATURE_STRIDE_SAMPLES */
  uint32_t num_mfcc;       /* 0: log-mel values; else this many MFCCs per frame */
  float *dct;              /* num_mfcc * num_channels floats when num_mfcc > 0 */
  float *row;              /* num_channels floats: one frame's log-mel values */
  int subtract_clip_mean;  /* norm "clip_mean" */
  float input_scale;       /* 1 when the run has none */
} tme_audio_input_t;

/* Builds the filterbank (tme_logmel_init's errors) and the DCT matrix. */
int tme_audio_input_init(tme_audio_input_t *in);

/* Values per clip: num_frames * (num_mfcc, or num_channels for log-mel). */
uint32_t tme_audio_input_count(const tme_audio_input_t *in);

/* The model's float input for the clip of num_frames frames starting at ring[start % ring_len]
 * (wrapping as in tme_logmel_frame): tme_audio_input_count(in) values in out. */
void tme_audio_input_compute(tme_audio_input_t *in, const int16_t *ring, uint32_t ring_len,
                             uint32_t start, float *out);

/* The int8 value of x: round(x / scale) + zero_point, halves away from zero as TFLite's
 * quantize kernel (and tinyml_edu.runtime.quantize_input), saturated to [-128, 127]. */
int8_t tme_quantize_int8(float x, float scale, int32_t zero_point);

/* ---------------------------------------------------------------------------------------
 * A model's IMU input, one sample at a time (features.scale_imu, plus the gestures project's
 * derived "amag" channel): the inference sketch scales every IMU reading with it, and the
 * emulated Cortex-M4 runs it on raw test windows to check it (tinyml-edu verify --on
 * cortex-m4). tinyml_edu_imu_input.h fills this from model_settings.h. */

#define TME_IMU_RAW_CHANNELS 6   /* one IMU reading: ax, ay, az in g; gx, gy, gz in dps */
#define TME_IMU_MAX_CHANNELS 16  /* model channels, derived ones included */
#define TME_DSP_BAD_CHANNELS (-6) /* FEATURE_CHANNELS / FEATURE_DERIVED_CHANNELS not understood */

typedef struct {
  uint32_t num_channels;    /* model channels per sample, derived ones included */
  uint32_t sensor_channels; /* the first ones, each one IMU value divided by its full scale */
  uint8_t source[TME_IMU_MAX_CHANNELS];    /* index of that IMU value, 0..5 */
  float full_scale[TME_IMU_MAX_CHANNELS];  /* accel_range_g or gyro_range_dps */
  int amag;                 /* 1: the last channel is (|a| - amag_offset_g) / accel_range_g */
  float accel_range_g;
  float amag_offset_g;
} tme_imu_input_t;

/* channels: the training channel names joined with ',' ("ax,ay,az,gx,gy,gz"): an 'a' or 'g'
 * then an axis x, y or z each. derived: NULL or "" for none, or "amag" (the only derived
 * channel so far). num_channels must count both. Returns TME_DSP_OK, TME_DSP_BAD_CHANNELS or
 * TME_DSP_BAD_RANGE (a full scale not > 0). */
int tme_imu_input_init(tme_imu_input_t *in, const char *channels, const char *derived,
                       uint32_t num_channels, float accel_range_g, float gyro_range_dps,
                       float amag_offset_g);

/* One IMU reading -> one row of num_channels model inputs: each sensor channel divided by
 * its full scale (a division, not a multiplication by the reciprocal: the host divides too),
 * each value clipped to [-1, 1]. */
void tme_imu_input_sample(const tme_imu_input_t *in, const float raw[TME_IMU_RAW_CHANNELS],
                          float *row);

/* ---------------------------------------------------------------------------------------
 * Decimation by an integer factor with a Hann-windowed-sinc low-pass (cut-off at 90% of the
 * new Nyquist frequency, unity gain at DC). */

#define TME_DECIMATOR_TAPS(factor) (32u * (factor) + 1u)

typedef struct {
  float *taps;    /* num_taps */
  float *history; /* num_taps */
  uint32_t num_taps;
  uint32_t factor;
  uint32_t pos;   /* next write position in history */
  uint32_t phase; /* input samples since the last output */
} tme_decimator_t;

/* Returns 0, or -1 for factor 0 or fewer than 3 taps. factor 1 passes samples through. */
int tme_decimator_init(tme_decimator_t *dec, float *taps, float *history, uint32_t num_taps,
                       uint32_t factor);

/* Feeds one input sample; returns 1 and sets *out when an output sample is due. */
int tme_decimator_push(tme_decimator_t *dec, int16_t in, int16_t *out);

/* ---------------------------------------------------------------------------------------
 * Single-producer / single-consumer ring of int16 samples. The producer (an interrupt or
 * another core) only moves `head`, the consumer only `tail`, so neither ever waits. When
 * the ring is full new samples are dropped and counted. */

typedef struct {
  int16_t *buf;
  uint32_t mask;          /* capacity - 1, capacity a power of two */
  volatile uint32_t head; /* samples written, free running */
  volatile uint32_t tail; /* samples read, free running */
  volatile uint32_t dropped;
} tme_ring16_t;

int tme_ring16_init(tme_ring16_t *ring, int16_t *buf, uint32_t capacity); /* -1: not 2^k */
uint32_t tme_ring16_write(tme_ring16_t *ring, const int16_t *src, uint32_t n);
uint32_t tme_ring16_read(tme_ring16_t *ring, int16_t *dst, uint32_t max);
uint32_t tme_ring16_available(const tme_ring16_t *ring);
void tme_ring16_clear(tme_ring16_t *ring); /* consumer side: drop everything unread */

#ifdef __cplusplus
}
#endif

#endif /* TINYML_EDU_DSP_H_ */
