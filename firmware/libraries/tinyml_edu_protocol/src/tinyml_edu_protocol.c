/*
 * tinyml_edu_protocol.c - see tinyml_edu_protocol.h. Plain C99, no libc calls at all, so it
 * builds freestanding (-ffreestanding) for the Cortex-M4F of the Nano 33 BLE Sense, for the
 * ESP32-S3 and for the host tests alike.
 */
#include "tinyml_edu_protocol.h"

/* ========================================================================================
 * CRC-16/CCITT-FALSE */

uint16_t tme_crc16_update(uint16_t crc, const uint8_t *data, size_t len) {
  size_t i;
  int bit;
  for (i = 0; i < len; ++i) {
    crc ^= (uint16_t)((uint16_t)data[i] << 8);
    for (bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
    }
  }
  return crc;
}

uint16_t tme_crc16(const uint8_t *data, size_t len) {
  return tme_crc16_update(0xFFFFu, data, len);
}

/* ========================================================================================
 * A text buffer that remembers when it ran out of room. */

typedef struct {
  char *out;
  size_t cap;
  size_t len;
  int ok;
} text_t;

static void text_init(text_t *t, char *out, size_t cap) {
  t->out = out;
  t->cap = cap;
  t->len = 0;
  t->ok = (out != 0 && cap > 0);
  if (t->ok) out[0] = '\0';
}

static void text_char(text_t *t, char c) {
  if (!t->ok) return;
  if (t->len + 1 >= t->cap) { /* keep room for the NUL */
    t->ok = 0;
    return;
  }
  t->out[t->len++] = c;
  t->out[t->len] = '\0';
}

static void text_str(text_t *t, const char *s) {
  if (s == 0) return;
  while (*s && t->ok) text_char(t, *s++);
}

static size_t text_done(text_t *t) {
  if (!t->ok) {
    if (t->out != 0 && t->cap > 0) t->out[0] = '\0';
    return 0;
  }
  return t->len;
}

/* ========================================================================================
 * Exact decimal formatting.
 *
 * A finite double is m * 2^e with an integer m < 2^53. The text with d decimals is the
 * integer N = round(m * 2^e * 10^d) with a point before its last d digits. m * 10^d is
 * computed exactly in a little big-number of 16-bit limbs (32-bit arithmetic only: no
 * 64-bit division helpers on the Cortex-M); then it is shifted left by e, or right by -e
 * with round-half-to-even on the bits shifted out. 16-bit limbs keep every intermediate
 * product below 2^32. The largest double times 10^9 needs 1054 bits: 67 limbs. */

#define BIG_LIMBS 68

typedef struct {
  uint16_t limb[BIG_LIMBS]; /* little-endian */
  int n;                    /* limbs in use; limb[n-1] != 0 unless n == 0 */
} big_t;

static void big_trim(big_t *b) {
  while (b->n > 0 && b->limb[b->n - 1] == 0) b->n--;
}

static void big_set_u64(big_t *b, uint64_t v) {
  b->n = 0;
  while (v != 0) {
    b->limb[b->n++] = (uint16_t)(v & 0xFFFFu);
    v >>= 16;
  }
}

static void big_mul_small(big_t *b, uint32_t factor) { /* factor <= 65535 */
  uint32_t carry = 0;
  int i;
  for (i = 0; i < b->n; ++i) {
    uint32_t p = (uint32_t)b->limb[i] * factor + carry;
    b->limb[i] = (uint16_t)(p & 0xFFFFu);
    carry = p >> 16;
  }
  if (carry != 0 && b->n < BIG_LIMBS) b->limb[b->n++] = (uint16_t)carry;
}

static void big_add_small(big_t *b, uint32_t v) { /* v <= 65535 */
  int i = 0;
  while (v != 0) {
    uint32_t s;
    if (i == b->n) {
      if (b->n == BIG_LIMBS) return;
      b->limb[b->n++] = 0;
    }
    s = (uint32_t)b->limb[i] + v;
    b->limb[i] = (uint16_t)(s & 0xFFFFu);
    v = s >> 16;
    ++i;
  }
}

static void big_shift_left(big_t *b, int bits) {
  int words = bits / 16, rest = bits % 16, i;
  if (b->n == 0) return;
  if (words > 0) {
    for (i = b->n - 1; i >= 0; --i) {
      if (i + words < BIG_LIMBS) b->limb[i + words] = b->limb[i];
    }
    for (i = 0; i < words && i < BIG_LIMBS; ++i) b->limb[i] = 0;
    b->n = (b->n + words > BIG_LIMBS) ? BIG_LIMBS : b->n + words;
  }
  if (rest > 0) {
    uint32_t carry = 0;
    for (i = 0; i < b->n; ++i) {
      uint32_t v = ((uint32_t)b->limb[i] << rest) | carry;
      b->limb[i] = (uint16_t)(v & 0xFFFFu);
      carry = v >> 16;
    }
    if (carry != 0 && b->n < BIG_LIMBS) b->limb[b->n++] = (uint16_t)carry;
  }
}

static int big_bit(const big_t *b, int index) {
  int word = index / 16;
  if (index < 0 || word >= b->n) return 0;
  return (b->limb[word] >> (index % 16)) & 1;
}

static int big_any_below(const big_t *b, int index) { /* any bit set in [0, index) */
  int word, i;
  if (index <= 0) return 0;
  word = index / 16;
  for (i = 0; i < word && i < b->n; ++i) {
    if (b->limb[i] != 0) return 1;
  }
  if (word < b->n && (index % 16) != 0) {
    uint16_t mask = (uint16_t)((1u << (index % 16)) - 1u);
    if (b->limb[word] & mask) return 1;
  }
  return 0;
}

/* b = round_half_even(b / 2^bits) */
static void big_shift_right_round(big_t *b, int bits) {
  int half = big_bit(b, bits - 1);
  int sticky = big_any_below(b, bits - 1);
  int words = bits / 16, rest = bits % 16, i;
  if (words >= b->n) {
    b->n = 0;
  } else {
    for (i = 0; i + words < b->n; ++i) b->limb[i] = b->limb[i + words];
    b->n -= words;
    if (rest > 0) {
      for (i = 0; i < b->n; ++i) {
        uint32_t hi = (i + 1 < b->n) ? b->limb[i + 1] : 0;
        b->limb[i] = (uint16_t)(((b->limb[i] >> rest) | (hi << (16 - rest))) & 0xFFFFu);
      }
    }
    big_trim(b);
  }
  if (half && (sticky || (b->n > 0 && (b->limb[0] & 1u)))) big_add_small(b, 1);
}

static uint32_t big_divmod_small(big_t *b, uint32_t divisor) { /* divisor <= 65535 */
  uint32_t rem = 0;
  int i;
  for (i = b->n - 1; i >= 0; --i) {
    uint32_t cur = (rem << 16) | b->limb[i];
    b->limb[i] = (uint16_t)(cur / divisor);
    rem = cur % divisor;
  }
  big_trim(b);
  return rem;
}

/* The parts of a double: class 0 finite, 1 infinite, 2 NaN. */
typedef struct {
  int negative;
  int kind;
  uint64_t mantissa;
  int exponent;
} parts_t;

static parts_t split_double(double value) {
  parts_t p;
#if defined(__SIZEOF_DOUBLE__) && __SIZEOF_DOUBLE__ == 4
  /* AVR and a few others: double is a 32-bit float. */
  union {
    double d;
    uint32_t u;
  } bits;
  uint32_t frac;
  int exp;
  bits.d = value;
  p.negative = (int)(bits.u >> 31);
  exp = (int)((bits.u >> 23) & 0xFFu);
  frac = bits.u & 0x7FFFFFu;
  p.kind = (exp == 0xFF) ? (frac ? 2 : 1) : 0;
  p.mantissa = (exp == 0) ? frac : (frac | 0x800000u);
  p.exponent = (exp == 0) ? -149 : exp - 150;
#else
  union {
    double d;
    uint64_t u;
  } bits;
  uint64_t frac;
  int exp;
  bits.d = value;
  p.negative = (int)(bits.u >> 63);
  exp = (int)((bits.u >> 52) & 0x7FFu);
  frac = bits.u & 0xFFFFFFFFFFFFFull;
  p.kind = (exp == 0x7FF) ? (frac ? 2 : 1) : 0;
  p.mantissa = (exp == 0) ? frac : (frac | 0x10000000000000ull);
  p.exponent = (exp == 0) ? -1074 : exp - 1075;
#endif
  return p;
}

/* Appends the digits of `value` with `decimals` decimals to t. */
static void text_fixed(text_t *t, double value, unsigned decimals) {
  parts_t p = split_double(value);
  big_t b;
  char rev[BIG_LIMBS * 5 + TME_MAX_DECIMALS + 4]; /* digits, least significant first */
  int count = 0, i;
  unsigned d;

  if (decimals > TME_MAX_DECIMALS) {
    t->ok = 0;
    return;
  }
  if (p.kind == 2) { /* Python prints every NaN as "nan", sign or not */
    text_str(t, "nan");
    return;
  }
  if (p.negative) text_char(t, '-');
  if (p.kind == 1) {
    text_str(t, "inf");
    return;
  }

  big_set_u64(&b, p.mantissa);
  for (d = 0; d < decimals; ++d) big_mul_small(&b, 10);
  if (p.exponent >= 0) {
    big_shift_left(&b, p.exponent);
  } else {
    big_shift_right_round(&b, -p.exponent);
  }

  /* Digits, four at a time: remainders of 10000 keep the division in 32 bits. */
  while (b.n > 0) {
    uint32_t chunk = big_divmod_small(&b, 10000u);
    int k;
    for (k = 0; k < 4; ++k) {
      rev[count++] = (char)('0' + chunk % 10u);
      chunk /= 10u;
    }
  }
  while (count > 1 && rev[count - 1] == '0') count--; /* leading zeros from the chunks */
  while (count < (int)decimals + 1) rev[count++] = '0'; /* "0.0001", not ".0001" */

  for (i = count - 1; i >= 0; --i) {
    if (i == (int)decimals - 1) text_char(t, '.');
    text_char(t, rev[i]);
  }
}

size_t tme_format_fixed(char *out, size_t cap, double value, unsigned decimals) {
  text_t t;
  text_init(&t, out, cap);
  text_fixed(&t, value, decimals);
  return text_done(&t);
}

static void text_uint(text_t *t, uint32_t value) {
  char rev[10];
  int count = 0;
  do {
    rev[count++] = (char)('0' + value % 10u);
    value /= 10u;
  } while (value != 0);
  while (count > 0) text_char(t, rev[--count]);
}

size_t tme_format_uint(char *out, size_t cap, uint32_t value) {
  text_t t;
  text_init(&t, out, cap);
  text_uint(&t, value);
  return text_done(&t);
}

/* ========================================================================================
 * Lines */

static const char kHex[] = "0123456789ABCDEF";

static size_t finish_with_checksum(text_t *t) {
  uint16_t crc;
  if (!t->ok) return text_done(t);
  crc = tme_crc16((const uint8_t *)t->out, t->len);
  text_str(t, " *");
  text_char(t, kHex[(crc >> 12) & 0xF]);
  text_char(t, kHex[(crc >> 8) & 0xF]);
  text_char(t, kHex[(crc >> 4) & 0xF]);
  text_char(t, kHex[crc & 0xF]);
  text_char(t, '\n');
  return text_done(t);
}

size_t tme_format_header(char *out, size_t cap, const char *board, const char *sensor,
                         uint32_t rate_hz, const char *columns, const char *units) {
  text_t t;
  text_init(&t, out, cap);
  text_str(&t, "#TINYML-EDU ");
  text_uint(&t, TME_PROTOCOL_VERSION);
  text_str(&t, " board=");
  text_str(&t, board);
  text_str(&t, " sensor=");
  text_str(&t, sensor);
  text_str(&t, " rate=");
  text_uint(&t, rate_hz);
  text_str(&t, " columns=");
  text_str(&t, columns);
  text_str(&t, " units=");
  text_str(&t, units);
  return finish_with_checksum(&t);
}

/* The opening that every data line shares, "<tag> <seq % 65536> ", in one place so that
 * the lines cannot drift apart. */
static void text_begin(text_t *t, char *out, size_t cap, char tag, uint32_t seq) {
  text_init(t, out, cap);
  text_char(t, tag);
  text_char(t, ' ');
  text_uint(t, seq % 65536u);
  text_char(t, ' ');
}

size_t tme_format_imu(char *out, size_t cap, uint32_t seq, const float *values, size_t count) {
  text_t t;
  size_t i;
  text_begin(&t, out, cap, 'D', seq);
  for (i = 0; i < count; ++i) {
    if (i > 0) text_char(&t, ',');
    text_fixed(&t, (double)values[i], 4);
  }
  return finish_with_checksum(&t);
}

size_t tme_format_imu_double(char *out, size_t cap, uint32_t seq, const double *values,
                             size_t count) {
  text_t t;
  size_t i;
  text_begin(&t, out, cap, 'D', seq);
  for (i = 0; i < count; ++i) {
    if (i > 0) text_char(&t, ',');
    text_fixed(&t, values[i], 4);
  }
  return finish_with_checksum(&t);
}

/* A label as one word: blanks become '_', an empty label "?". */
static void text_label(text_t *t, const char *label) {
  if (label == 0 || *label == '\0') {
    text_char(t, '?');
    return;
  }
  for (; *label; ++label) {
    char c = *label;
    text_char(t, (c == ' ' || c == '\t' || c == '\r' || c == '\n') ? '_' : c);
  }
}

size_t tme_format_prediction(char *out, size_t cap, uint32_t seq, const char *label,
                             double score, double ms) {
  text_t t;
  text_begin(&t, out, cap, 'P', seq);
  text_label(&t, label);
  text_char(&t, ' ');
  text_fixed(&t, score, 3);
  text_char(&t, ' ');
  text_fixed(&t, ms, 2);
  return finish_with_checksum(&t);
}

size_t tme_format_keyword(char *out, size_t cap, uint32_t seq, const char *label,
                          double score, uint32_t time_ms) {
  text_t t;
  text_begin(&t, out, cap, 'K', seq);
  text_label(&t, label);
  text_char(&t, ' ');
  text_fixed(&t, score, 4);
  text_char(&t, ' ');
  text_uint(&t, time_ms);
  return finish_with_checksum(&t);
}

size_t tme_format_centroids(char *out, size_t cap, uint32_t seq, const uint16_t *points,
                            size_t count) {
  text_t t;
  size_t i;
  text_begin(&t, out, cap, 'C', seq);
  text_uint(&t, (uint32_t)count);
  for (i = 0; i < count && points != 0; ++i) {
    text_char(&t, ' ');
    text_uint(&t, points[2 * i]);
    text_char(&t, ',');
    text_uint(&t, points[2 * i + 1]);
  }
  return finish_with_checksum(&t);
}

static size_t prefixed_line(char *out, size_t cap, const char *prefix, const char *text) {
  text_t t;
  text_init(&t, out, cap);
  text_str(&t, prefix);
  if (text != 0) {
    for (; *text; ++text) { /* one line: a line break inside would start a new line */
      char c = *text;
      text_char(&t, (c == '\n' || c == '\r') ? ' ' : c);
    }
  }
  text_char(&t, '\n');
  return text_done(&t);
}

size_t tme_format_comment(char *out, size_t cap, const char *text) {
  return prefixed_line(out, cap, "# ", text);
}

size_t tme_format_error(char *out, size_t cap, const char *text) {
  return prefixed_line(out, cap, "E ", text);
}

/* ========================================================================================
 * Binary camera frame */

int tme_camera_frame_ok(uint32_t width, uint32_t height, uint8_t format) {
  return width >= 1u && width <= TME_CAMERA_MAX_WIDTH && height >= 1u &&
         height <= TME_CAMERA_MAX_HEIGHT &&
         (format == TME_PIXEL_GRAYSCALE8 || format == TME_PIXEL_RGB565);
}

size_t tme_format_camera_head(uint8_t *out, size_t cap, uint32_t seq, uint32_t width,
                              uint32_t height, uint8_t format) {
  if (out == 0 || cap < TME_CAMERA_HEAD_BYTES || !tme_camera_frame_ok(width, height, format)) {
    return 0;
  }
  seq %= 65536u;
  out[0] = TME_SYNC_0;
  out[1] = TME_SYNC_1;
  out[2] = TME_CAMERA_FRAME_TYPE;
  out[3] = (uint8_t)(seq & 0xFFu);
  out[4] = (uint8_t)(seq >> 8);
  out[5] = (uint8_t)(width & 0xFFu);
  out[6] = (uint8_t)(width >> 8);
  out[7] = (uint8_t)(height & 0xFFu);
  out[8] = (uint8_t)(height >> 8);
  out[9] = format;
  return TME_CAMERA_HEAD_BYTES;
}

void tme_camera_frame_crc(const uint8_t *head, const uint8_t *pixels, size_t pixel_bytes,
                          uint8_t out[2]) {
  uint16_t crc = tme_crc16(head + 2, TME_CAMERA_HEAD_BYTES - 2u);
  crc = tme_crc16_update(crc, pixels, pixel_bytes);
  out[0] = (uint8_t)(crc & 0xFFu);
  out[1] = (uint8_t)(crc >> 8);
}

size_t tme_format_camera_frame(uint8_t *out, size_t cap, uint32_t seq, uint32_t width,
                               uint32_t height, uint8_t format, const uint8_t *pixels) {
  size_t n, i;
  if (!tme_camera_frame_ok(width, height, format) || pixels == 0) return 0;
  n = TME_CAMERA_PIXEL_BYTES(width, height, format);
  if (cap < TME_CAMERA_HEAD_BYTES + n + 2u) return 0;
  tme_format_camera_head(out, cap, seq, width, height, format);
  for (i = 0; i < n; ++i) out[TME_CAMERA_HEAD_BYTES + i] = pixels[i];
  tme_camera_frame_crc(out, pixels, n, out + TME_CAMERA_HEAD_BYTES + n);
  return TME_CAMERA_HEAD_BYTES + n + 2u;
}

size_t tme_format_camera_size(char *out, size_t cap, uint32_t width, uint32_t height) {
  text_t t;
  text_init(&t, out, cap);
  text_uint(&t, width);
  text_char(&t, 'x');
  text_uint(&t, height);
  return text_done(&t);
}

const char *tme_pixel_format_name(uint8_t format) {
  if (format == TME_PIXEL_GRAYSCALE8) return "grayscale8";
  if (format == TME_PIXEL_RGB565) return "rgb565";
  return "";
}

/* ========================================================================================
 * Binary audio frame */

size_t tme_format_audio_frame(uint8_t *out, size_t cap, uint32_t seq, const int16_t *samples,
                              size_t n) {
  size_t total = TME_AUDIO_FRAME_BYTES(n), i, pos = 0;
  uint16_t crc;
  if (out == 0 || n > TME_AUDIO_MAX_SAMPLES || cap < total || (n > 0 && samples == 0)) {
    return 0;
  }
  seq %= 65536u;
  out[pos++] = TME_SYNC_0;
  out[pos++] = TME_SYNC_1;
  out[pos++] = TME_AUDIO_FRAME_TYPE;
  out[pos++] = (uint8_t)(seq & 0xFFu);
  out[pos++] = (uint8_t)(seq >> 8);
  out[pos++] = (uint8_t)(n & 0xFFu);
  out[pos++] = (uint8_t)(n >> 8);
  for (i = 0; i < n; ++i) { /* little-endian whatever the CPU */
    uint16_t v = (uint16_t)samples[i];
    out[pos++] = (uint8_t)(v & 0xFFu);
    out[pos++] = (uint8_t)(v >> 8);
  }
  crc = tme_crc16(out + 2, pos - 2);
  out[pos++] = (uint8_t)(crc & 0xFFu);
  out[pos++] = (uint8_t)(crc >> 8);
  return pos;
}

/* ========================================================================================
 * Commands */

static int is_blank(char c) {
  return c == ' ' || c == '\t';
}

static char upper(char c) {
  return (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
}

static int same(const char *a, const char *b) {
  while (*a && *a == *b) {
    ++a;
    ++b;
  }
  return *a == *b;
}

/* Upper-case, blanks collapsed to one space, trimmed; at most TME_COMMAND_MAX chars. */
static void normalise(const char *in, char *out) {
  size_t len = 0;
  int space = 0;
  for (; *in; ++in) {
    char c = *in;
    if (is_blank(c)) {
      space = (len > 0);
      continue;
    }
    if (space && len < TME_COMMAND_MAX) out[len++] = ' ';
    space = 0;
    if (len < TME_COMMAND_MAX) out[len++] = upper(c);
  }
  out[len] = '\0';
}

static tme_command_t parse_normalised(const char *line) {
  if (line[0] == '\0') return TME_CMD_NONE;
  if (same(line, "HELLO")) return TME_CMD_HELLO;
  if (same(line, "START")) return TME_CMD_START;
  if (same(line, "STOP")) return TME_CMD_STOP;
  if (same(line, "INFER ON")) return TME_CMD_INFER_ON;
  if (same(line, "INFER OFF")) return TME_CMD_INFER_OFF;
  return TME_CMD_UNKNOWN;
}

tme_command_t tme_parse_command(const char *line) {
  char norm[TME_COMMAND_MAX + 1];
  if (line == 0) return TME_CMD_NONE;
  normalise(line, norm);
  return parse_normalised(norm);
}

void tme_command_reader_init(tme_command_reader_t *reader) {
  reader->line[0] = '\0';
  reader->len = 0;
  reader->overflow = 0;
  reader->pending[0] = '\0';
  reader->pending_len = 0;
}

tme_command_t tme_command_reader_feed(tme_command_reader_t *reader, uint8_t byte) {
  char c = (char)byte;
  tme_command_t command;
  size_t i;
  if (c != '\n' && c != '\r') {
    if (reader->pending_len < TME_COMMAND_MAX) {
      reader->pending[reader->pending_len++] = c;
      reader->pending[reader->pending_len] = '\0';
    } else {
      reader->overflow = 1;
    }
    return TME_CMD_NONE;
  }
  reader->pending[reader->pending_len] = '\0';
  normalise(reader->pending, reader->line);
  i = 0;
  while (reader->line[i] != '\0') ++i;
  reader->len = (uint8_t)i;
  command = reader->overflow ? TME_CMD_UNKNOWN : parse_normalised(reader->line);
  reader->pending_len = 0;
  reader->pending[0] = '\0';
  reader->overflow = 0;
  return command;
}

const char *tme_command_name(tme_command_t command) {
  switch (command) {
    case TME_CMD_NONE:
      return "";
    case TME_CMD_HELLO:
      return "HELLO";
    case TME_CMD_START:
      return "START";
    case TME_CMD_STOP:
      return "STOP";
    case TME_CMD_INFER_ON:
      return "INFER ON";
    case TME_CMD_INFER_OFF:
      return "INFER OFF";
    default:
      return "?";
  }
}
