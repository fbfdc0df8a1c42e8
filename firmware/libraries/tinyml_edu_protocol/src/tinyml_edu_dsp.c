/*
 * tinyml_edu_dsp.c - see tinyml_edu_dsp.h.
 *
 * Start-up code (window, twiddles, filterbank, DCT, FIR taps) uses double precision so the
 * tables match numpy's float64 ones as closely as float32 storage allows; the per-frame
 * code is float32 only (the Cortex-M4F has a single-precision FPU, double is emulated).
 */
#include "tinyml_edu_dsp.h"

#include <math.h>
#include <string.h>

#define TME_PI 3.14159265358979323846

#if defined(__GNUC__)
#define TME_BARRIER() __sync_synchronize()
#else
#define TME_BARRIER() ((void)0)
#endif

static int is_power_of_two(uint32_t n) {
  return n != 0 && (n & (n - 1u)) == 0;
}

/* ========================================================================================
 * Real FFT */

int tme_rfft_init(float *twiddle, uint32_t n) {
  uint32_t k;
  if (!is_power_of_two(n) || n < 4 || n > 65536u) return -1;
  for (k = 0; k < n / 2; ++k) {
    double angle = 2.0 * TME_PI * (double)k / (double)n;
    twiddle[2 * k] = (float)cos(angle);
    twiddle[2 * k + 1] = (float)sin(angle);
  }
  return 0;
}

/* In-place complex FFT of m points stored re,im,re,im,... W_m^j = W_n^(2j) = twiddle[2j]. */
static void complex_fft(float *x, uint32_t m, const float *twiddle) {
  uint32_t i, j, size;
  /* bit-reversal permutation */
  for (i = 1, j = 0; i < m; ++i) {
    uint32_t bit = m >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      float tr = x[2 * i], ti = x[2 * i + 1];
      x[2 * i] = x[2 * j];
      x[2 * i + 1] = x[2 * j + 1];
      x[2 * j] = tr;
      x[2 * j + 1] = ti;
    }
  }
  /* butterflies: W = cos - i sin (forward transform, like numpy) */
  for (size = 2; size <= m; size <<= 1) {
    uint32_t half = size >> 1;
    uint32_t step = m / size; /* twiddle index stride in W_m, i.e. 2*step in W_n */
    uint32_t start;
    for (start = 0; start < m; start += size) {
      uint32_t k;
      for (k = 0; k < half; ++k) {
        const float *w = &twiddle[2 * (2 * k * step)];
        float c = w[0], s = w[1];
        float *a = &x[2 * (start + k)];
        float *b = &x[2 * (start + k + half)];
        float tr = b[0] * c + b[1] * s;
        float ti = b[1] * c - b[0] * s;
        b[0] = a[0] - tr;
        b[1] = a[1] - ti;
        a[0] += tr;
        a[1] += ti;
      }
    }
  }
}

void tme_rfft_power(float *buf, uint32_t n, const float *twiddle, float *power) {
  uint32_t m = n / 2, k;
  complex_fft(buf, m, twiddle);
  /* X[0] and X[m] are real: Re Z0 + Im Z0 and Re Z0 - Im Z0. */
  {
    float a = buf[0], b = buf[1];
    power[0] = (a + b) * (a + b);
    power[m] = (a - b) * (a - b);
  }
  /* X[k] = E + W_n^k O with E = (Z[k] + conj Z[m-k]) / 2, O = -i (Z[k] - conj Z[m-k]) / 2 */
  for (k = 1; k < m; ++k) {
    float zr = buf[2 * k], zi = buf[2 * k + 1];
    float cr = buf[2 * (m - k)], ci = -buf[2 * (m - k) + 1];
    float er = 0.5f * (zr + cr), ei = 0.5f * (zi + ci);
    float dr = 0.5f * (zr - cr), di = 0.5f * (zi - ci);
    float or_ = di, oi = -dr; /* -i * (dr + i di) */
    float c = twiddle[2 * k], s = twiddle[2 * k + 1];
    float xr = er + (or_ * c + oi * s);
    float xi = ei + (oi * c - or_ * s);
    power[k] = xr * xr + xi * xi;
  }
}

/* ========================================================================================
 * Log-mel */

static double hz_to_mel(double hz) {
  return 2595.0 * log10(1.0 + hz / 700.0);
}

static double mel_to_hz(double mel) {
  return 700.0 * (pow(10.0, mel / 2595.0) - 1.0);
}

/* Edge i of num_channels + 2 edges equally spaced in mel, like np.linspace (the last edge is
 * exactly the upper one). */
static double mel_edge(double mel_lo, double mel_hi, uint32_t count, uint32_t i) {
  double step = (mel_hi - mel_lo) / (double)(count - 1u);
  if (i == count - 1u) return mel_to_hz(mel_hi);
  return mel_to_hz((double)i * step + mel_lo);
}

int tme_logmel_init(tme_logmel_t *mel) {
  uint32_t i, ch, bins, used = 0;
  double mel_lo, mel_hi, bin_hz;
  if (!is_power_of_two(mel->fft_size) || mel->fft_size < 4 || mel->fft_size > 65536u ||
      mel->window_samples == 0 || mel->window_samples > mel->fft_size ||
      mel->num_channels == 0) {
    return TME_DSP_BAD_SIZE;
  }
  if (!(mel->lower_hz >= 0.0f && mel->lower_hz < mel->upper_hz &&
        (double)mel->upper_hz <= (double)mel->sample_rate / 2.0)) {
    return TME_DSP_BAD_RANGE;
  }
  for (i = 0; i < mel->window_samples; ++i) { /* periodic Hann */
    mel->hann[i] =
        (float)(0.5 - 0.5 * cos(2.0 * TME_PI * (double)i / (double)mel->window_samples));
  }
  tme_rfft_init(mel->twiddle, mel->fft_size);

  bins = mel->fft_size / 2u + 1u;
  bin_hz = (double)mel->sample_rate / (double)mel->fft_size;
  mel_lo = hz_to_mel((double)mel->lower_hz);
  mel_hi = hz_to_mel((double)mel->upper_hz);
  for (ch = 0; ch < mel->num_channels; ++ch) {
    double left = mel_edge(mel_lo, mel_hi, mel->num_channels + 2u, ch);
    double centre = mel_edge(mel_lo, mel_hi, mel->num_channels + 2u, ch + 1u);
    double right = mel_edge(mel_lo, mel_hi, mel->num_channels + 2u, ch + 2u);
    uint32_t first = bins, last = 0, k;
    for (k = 0; k < bins; ++k) {
      double f = (double)k * bin_hz;
      double rising = (f - left) / (centre - left);
      double falling = (right - f) / (right - centre);
      double w = rising < falling ? rising : falling;
      if (w > 0.0) {
        if (first == bins) first = k;
        last = k;
      }
    }
    if (first == bins) return TME_DSP_EMPTY_CHANNEL;
    if (used + (last - first + 1u) > mel->weights_capacity) return TME_DSP_NO_ROOM;
    mel->first_bin[ch] = (uint16_t)first;
    mel->bin_count[ch] = (uint16_t)(last - first + 1u);
    for (k = first; k <= last; ++k) {
      double f = (double)k * bin_hz;
      double rising = (f - left) / (centre - left);
      double falling = (right - f) / (right - centre);
      double w = rising < falling ? rising : falling;
      mel->weights[used++] = (float)(w > 0.0 ? w : 0.0);
    }
  }
  return TME_DSP_OK;
}

void tme_logmel_frame(tme_logmel_t *mel, const int16_t *ring, uint32_t ring_len,
                      uint32_t start, float *out) {
  const float scale = 1.0f / 32768.0f;
  uint32_t i, ch, pos = start % ring_len;
  const float *w;
  for (i = 0; i < mel->window_samples; ++i) {
    mel->fft[i] = (float)ring[pos] * scale * mel->hann[i];
    if (++pos == ring_len) pos = 0;
  }
  for (; i < mel->fft_size; ++i) mel->fft[i] = 0.0f;
  tme_rfft_power(mel->fft, mel->fft_size, mel->twiddle, mel->power);
  w = mel->weights;
  for (ch = 0; ch < mel->num_channels; ++ch) {
    const float *p = &mel->power[mel->first_bin[ch]];
    uint32_t n = mel->bin_count[ch], k;
    float acc = 0.0f;
    for (k = 0; k < n; ++k) acc += p[k] * w[k];
    w += n;
    out[ch] = logf(acc > mel->log_floor ? acc : mel->log_floor);
  }
}

void tme_dct_init(float *matrix, uint32_t num_coeffs, uint32_t num_inputs) {
  uint32_t k, i;
  double norm = sqrt(2.0 / (double)num_inputs);
  for (k = 0; k < num_coeffs; ++k) {
    for (i = 0; i < num_inputs; ++i) {
      double v = norm * cos(TME_PI * (double)k * (double)(2u * i + 1u) /
                            (2.0 * (double)num_inputs));
      if (k == 0) v /= sqrt(2.0);
      matrix[k * num_inputs + i] = (float)v;
    }
  }
}

void tme_dct_apply(const float *matrix, uint32_t num_coeffs, uint32_t num_inputs,
                   const float *in, float *out) {
  uint32_t k, i;
  for (k = 0; k < num_coeffs; ++k) {
    const float *row = &matrix[k * num_inputs];
    float acc = 0.0f;
    for (i = 0; i < num_inputs; ++i) acc += row[i] * in[i];
    out[k] = acc;
  }
}

/* ========================================================================================
 * A model's audio input */

int tme_audio_input_init(tme_audio_input_t *in) {
  int status = tme_logmel_init(&in->mel);
  if (status != TME_DSP_OK) return status;
  if (in->num_mfcc > in->mel.num_channels || (in->num_mfcc > 0 && in->dct == NULL) ||
      in->num_frames == 0 || in->stride_samples == 0) {
    return TME_DSP_BAD_SIZE;
  }
  if (in->num_mfcc > 0) tme_dct_init(in->dct, in->num_mfcc, in->mel.num_channels);
  return TME_DSP_OK;
}

uint32_t tme_audio_input_count(const tme_audio_input_t *in) {
  return in->num_frames * (in->num_mfcc > 0 ? in->num_mfcc : in->mel.num_channels);
}

void tme_audio_input_compute(tme_audio_input_t *in, const int16_t *ring, uint32_t ring_len,
                             uint32_t start, float *out) {
  const uint32_t width = in->num_mfcc > 0 ? in->num_mfcc : in->mel.num_channels;
  const uint32_t n = in->num_frames * width;
  uint32_t f, i;
  float offset = 0.0f;
  for (f = 0; f < in->num_frames; ++f) {
    float *frame = &out[f * width];
    if (in->num_mfcc > 0) {
      tme_logmel_frame(&in->mel, ring, ring_len, start + f * in->stride_samples, in->row);
      tme_dct_apply(in->dct, in->num_mfcc, in->mel.num_channels, in->row, frame);
    } else {
      tme_logmel_frame(&in->mel, ring, ring_len, start + f * in->stride_samples, frame);
    }
  }
  if (in->subtract_clip_mean) {
    double sum = 0.0;
    for (i = 0; i < n; ++i) sum += (double)out[i];
    offset = (float)(sum / (double)n);
  }
  for (i = 0; i < n; ++i) out[i] = (out[i] - offset) * in->input_scale;
}

int8_t tme_quantize_int8(float x, float scale, int32_t zero_point) {
  long q = lroundf(x / scale) + (long)zero_point;
  if (q < -128) q = -128;
  if (q > 127) q = 127;
  return (int8_t)q;
}

/* ========================================================================================
 * IMU input */

static float tme_clip_unit(float x) { return x > 1.0f ? 1.0f : (x < -1.0f ? -1.0f : x); }

int tme_imu_input_init(tme_imu_input_t *in, const char *channels, const char *derived,
                       uint32_t num_channels, float accel_range_g, float gyro_range_dps,
                       float amag_offset_g) {
  const char *s = channels;
  uint32_t c = 0;
  memset(in, 0, sizeof *in);
  if (!(accel_range_g > 0.0f) || !(gyro_range_dps > 0.0f)) return TME_DSP_BAD_RANGE;
  if (derived != NULL && derived[0] != '\0') {
    if (strcmp(derived, "amag") != 0) return TME_DSP_BAD_CHANNELS;
    in->amag = 1;
  }
  if (num_channels > TME_IMU_MAX_CHANNELS || num_channels <= (uint32_t)in->amag) {
    return TME_DSP_BAD_CHANNELS;
  }
  in->num_channels = num_channels;
  in->sensor_channels = num_channels - (uint32_t)in->amag;
  in->accel_range_g = accel_range_g;
  in->amag_offset_g = amag_offset_g;
  for (c = 0; c < in->sensor_channels; ++c) {
    /* names are case-insensitive on the host (features.scale_imu reads the first letter) */
    const char kind = (char)(s[0] | 0x20);
    const char axis = s[0] ? (char)(s[1] | 0x20) : '\0';
    if ((kind != 'a' && kind != 'g') || axis < 'x' || axis > 'z') return TME_DSP_BAD_CHANNELS;
    in->source[c] = (uint8_t)((kind == 'a' ? 0 : 3) + (axis - 'x'));
    in->full_scale[c] = kind == 'a' ? accel_range_g : gyro_range_dps;
    s += 2;
    if (*s == ',' && c + 1 < in->sensor_channels) ++s;
  }
  return *s == '\0' ? TME_DSP_OK : TME_DSP_BAD_CHANNELS;
}

void tme_imu_input_sample(const tme_imu_input_t *in, const float raw[TME_IMU_RAW_CHANNELS],
                          float *row) {
  uint32_t c;
  for (c = 0; c < in->sensor_channels; ++c) {
    row[c] = tme_clip_unit(raw[in->source[c]] / in->full_scale[c]);
  }
  if (in->amag) {
    const float a = sqrtf(raw[0] * raw[0] + raw[1] * raw[1] + raw[2] * raw[2]);
    row[in->sensor_channels] = tme_clip_unit((a - in->amag_offset_g) / in->accel_range_g);
  }
}

/* ========================================================================================
 * Decimator */

int tme_decimator_init(tme_decimator_t *dec, float *taps, float *history, uint32_t num_taps,
                       uint32_t factor) {
  uint32_t k;
  double sum = 0.0, cutoff, middle;
  if (factor == 0 || num_taps < 3) return -1;
  dec->taps = taps;
  dec->history = history;
  dec->num_taps = num_taps;
  dec->factor = factor;
  dec->pos = 0;
  dec->phase = 0;
  cutoff = 0.9 * 0.5 / (double)factor; /* cycles per input sample */
  middle = 0.5 * (double)(num_taps - 1u);
  for (k = 0; k < num_taps; ++k) {
    double t = (double)k - middle;
    double sinc = (t == 0.0) ? 2.0 * cutoff : sin(2.0 * TME_PI * cutoff * t) / (TME_PI * t);
    /* Hann that does not waste its end taps on zeros */
    double window = 0.5 - 0.5 * cos(2.0 * TME_PI * (double)(k + 1u) / (double)(num_taps + 1u));
    taps[k] = (float)(sinc * window);
    sum += (double)taps[k];
    history[k] = 0.0f;
  }
  for (k = 0; k < num_taps; ++k) taps[k] = (float)((double)taps[k] / sum);
  return 0;
}

int tme_decimator_push(tme_decimator_t *dec, int16_t in, int16_t *out) {
  uint32_t k, idx;
  float acc = 0.0f;
  if (dec->factor == 1) {
    *out = in;
    return 1;
  }
  dec->history[dec->pos] = (float)in;
  dec->pos = (dec->pos + 1u == dec->num_taps) ? 0 : dec->pos + 1u;
  if (++dec->phase < dec->factor) return 0;
  dec->phase = 0;
  idx = dec->pos; /* oldest sample */
  for (k = 0; k < dec->num_taps; ++k) {
    acc += dec->taps[k] * dec->history[idx];
    if (++idx == dec->num_taps) idx = 0;
  }
  acc += (acc >= 0.0f) ? 0.5f : -0.5f;
  if (acc > 32767.0f) acc = 32767.0f;
  if (acc < -32768.0f) acc = -32768.0f;
  *out = (int16_t)acc;
  return 1;
}

/* ========================================================================================
 * SPSC ring */

int tme_ring16_init(tme_ring16_t *ring, int16_t *buf, uint32_t capacity) {
  if (!is_power_of_two(capacity)) return -1;
  ring->buf = buf;
  ring->mask = capacity - 1u;
  ring->head = 0;
  ring->tail = 0;
  ring->dropped = 0;
  return 0;
}

uint32_t tme_ring16_write(tme_ring16_t *ring, const int16_t *src, uint32_t n) {
  uint32_t head = ring->head;
  uint32_t space = (ring->mask + 1u) - (head - ring->tail);
  uint32_t count = n < space ? n : space, i;
  for (i = 0; i < count; ++i) ring->buf[(head + i) & ring->mask] = src[i];
  TME_BARRIER(); /* the samples before the index that publishes them */
  ring->head = head + count;
  if (count < n) ring->dropped += n - count;
  return count;
}

uint32_t tme_ring16_read(tme_ring16_t *ring, int16_t *dst, uint32_t max) {
  uint32_t tail = ring->tail;
  uint32_t avail = ring->head - tail;
  uint32_t count = max < avail ? max : avail, i;
  TME_BARRIER();
  for (i = 0; i < count; ++i) dst[i] = ring->buf[(tail + i) & ring->mask];
  TME_BARRIER();
  ring->tail = tail + count;
  return count;
}

uint32_t tme_ring16_available(const tme_ring16_t *ring) {
  return ring->head - ring->tail;
}

void tme_ring16_clear(tme_ring16_t *ring) {
  ring->tail = ring->head;
}
