/*
 * tinyml_edu_protocol.h - the board side of the tinyml-edu serial protocol, version 1.
 *
 * The specification is docs/serial-protocol.md; the host side is tinyml_edu/protocol.py.
 * tests/test_firmware.py compiles this file on the host and checks that every line and
 * frame it makes is byte-identical to what the Python encoder makes for the same input.
 *
 * Plain C99: no Arduino, no printf, no malloc. Every function writes into a buffer the
 * caller owns and returns the number of bytes written, or 0 when the buffer is too small
 * (nothing useful is left in it then). Text results are also NUL-terminated; the NUL is
 * not counted, so `Serial.write(buf, n)` sends exactly the line.
 *
 * Why no printf("%f"): newlib-nano, the C library of most Arduino cores for Arm, leaves out
 * float formatting unless the sketch is linked with -u _printf_float, and even glibc's
 * rounding is not specified to be Python's. tme_format_fixed() converts the exact binary
 * value of the double with integer arithmetic and rounds half to even, which is exactly
 * what Python's f"{v:.4f}" does (so -0.00004 gives "-0.0000" and 0.00005 gives "0.0001").
 */
#ifndef TINYML_EDU_PROTOCOL_H_
#define TINYML_EDU_PROTOCOL_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TME_PROTOCOL_VERSION 1
#define TME_BAUD_RATE 115200UL

/* A buffer of this size holds any line the protocol allows (the host drops longer ones). */
#define TME_LINE_MAX 512

/* Binary audio frames: sync, type, seq, n, samples, CRC. */
#define TME_SYNC_0 0xA5
#define TME_SYNC_1 0x5A
#define TME_AUDIO_FRAME_TYPE 0x01
#define TME_AUDIO_MAX_SAMPLES 1024
#define TME_AUDIO_FRAME_BYTES(n) (2u + 5u + 2u * (size_t)(n) + 2u)
#define TME_AUDIO_FRAME_MAX TME_AUDIO_FRAME_BYTES(TME_AUDIO_MAX_SAMPLES)

/* Binary camera frames: sync, type, seq, width, height, format, pixels, CRC. QVGA at most.
 * Pixels go row by row from the top; RGB565 pixels high byte first, as the OV7675 and the
 * OV2640 deliver them, so a sketch sends its camera buffer unchanged. */
#define TME_CAMERA_FRAME_TYPE 0x02
#define TME_PIXEL_GRAYSCALE8 0x01
#define TME_PIXEL_RGB565 0x02
#define TME_CAMERA_MAX_WIDTH 320u
#define TME_CAMERA_MAX_HEIGHT 240u
#define TME_CAMERA_HEAD_BYTES 10u /* sync (2), type, seq (2), width (2), height (2), format */
#define TME_CAMERA_PIXEL_BYTES(w, h, format) \
  ((size_t)(w) * (size_t)(h) * ((format) == TME_PIXEL_RGB565 ? 2u : 1u))
#define TME_CAMERA_FRAME_BYTES(w, h, format) \
  (TME_CAMERA_HEAD_BYTES + TME_CAMERA_PIXEL_BYTES(w, h, format) + 2u)

/* Most decimals tme_format_fixed() accepts. */
#define TME_MAX_DECIMALS 9

/* ---------------------------------------------------------------------------------------
 * CRC-16/CCITT-FALSE: polynomial 0x1021, initial value 0xFFFF, no reflection, no final XOR.
 * tme_crc16("123456789") == 0x29B1. */
uint16_t tme_crc16_update(uint16_t crc, const uint8_t *data, size_t len);
uint16_t tme_crc16(const uint8_t *data, size_t len);

/* ---------------------------------------------------------------------------------------
 * Numbers. */

/* `value` with exactly `decimals` digits after the point, like Python's f"{value:.Nf}":
 * correctly rounded (half to even on the exact binary value), "-" kept for negative values
 * that round to zero and for -0.0, "nan", "inf" and "-inf" as Python spells them.
 * decimals <= TME_MAX_DECIMALS. Returns the length (NUL not counted), 0 if it does not fit. */
size_t tme_format_fixed(char *out, size_t cap, double value, unsigned decimals);

/* Unsigned decimal integer. Returns the length, 0 if it does not fit. */
size_t tme_format_uint(char *out, size_t cap, uint32_t value);

/* ---------------------------------------------------------------------------------------
 * Lines. Each ends in " *XXXX\n" (the CRC of everything before the space) where the
 * protocol asks for a checksum. */

/* "#TINYML-EDU 1 board=<board> sensor=<sensor> rate=<rate_hz> columns=<columns>
 *  units=<units> *XXXX\n". columns and units are comma-separated lists, e.g.
 * "ax,ay,az,gx,gy,gz" and "g,g,g,dps,dps,dps". The rate is a whole number of Hz; Python
 * writes rate with :g, which gives the same digits for every whole rate below 1,000,000. */
size_t tme_format_header(char *out, size_t cap, const char *board, const char *sensor,
                         uint32_t rate_hz, const char *columns, const char *units);

/* "D <seq % 65536> <v1>,<v2>,... *XXXX\n", every value with 4 decimals. The floats are
 * widened to double exactly, so the text is what Python prints for float(np.float32(v)). */
size_t tme_format_imu(char *out, size_t cap, uint32_t seq, const float *values, size_t count);

/* Same for values already in double precision (what the host tests use). */
size_t tme_format_imu_double(char *out, size_t cap, uint32_t seq, const double *values,
                             size_t count);

/* "P <seq % 65536> <label> <score with 3 decimals> <ms with 2 decimals> *XXXX\n".
 * A label must be one word: spaces in it are written as '_' (the host splits on spaces);
 * an empty label is written as "?". */
size_t tme_format_prediction(char *out, size_t cap, uint32_t seq, const char *label,
                             double score, double ms);

/* "K <seq % 65536> <label> <score with 4 decimals> <time_ms> *XXXX\n": a keyword the
 * board's posterior smoother detected (tinyml_edu_listen.h), its averaged score, and the time
 * of the inference that decided, in ms from the start of listening counted in samples (so the
 * host's `tinyml-edu listen` gives the same times on a recording). Labels as for P lines. */
size_t tme_format_keyword(char *out, size_t cap, uint32_t seq, const char *label,
                          double score, uint32_t time_ms);

/* "C <seq % 65536> <count> <row>,<col> <row>,<col> ... *XXXX\n": where the objects a
 * counting model (FOMO, e.g. cars) counted are: `count` (row, col) pairs in `points`, the
 * centres of their grid cells in pixels of the model's frame. `seq` is the seq of the P line
 * it follows. Returns 0 if the line does not fit. */
size_t tme_format_centroids(char *out, size_t cap, uint32_t seq, const uint16_t *points,
                            size_t count);

/* "# <text>\n" (a comment for humans, never stored) and "E <text>\n" (an error). */
size_t tme_format_comment(char *out, size_t cap, const char *text);
size_t tme_format_error(char *out, size_t cap, const char *text);

/* ---------------------------------------------------------------------------------------
 * Binary audio frame: A5 5A | 01 | seq u16 LE | n u16 LE | n x int16 LE | CRC u16 LE over
 * type..samples. n <= TME_AUDIO_MAX_SAMPLES; `out` needs TME_AUDIO_FRAME_BYTES(n) bytes.
 * Returns the frame length, 0 if n is too large or the buffer too small. */
size_t tme_format_audio_frame(uint8_t *out, size_t cap, uint32_t seq, const int16_t *samples,
                              size_t n);

/* ---------------------------------------------------------------------------------------
 * Binary camera frame: A5 5A | 02 | seq u16 LE | width u16 LE | height u16 LE | format u8 |
 * pixels | CRC u16 LE over type..pixels. A QVGA frame is too big to copy into a second
 * buffer on a Nano, so a sketch sends it in three pieces: the head (tme_format_camera_head),
 * its camera buffer as it is, and the CRC (tme_camera_frame_crc). tinyml_edu_camera.h does
 * all three for a sketch. */

/* 1 <= width <= TME_CAMERA_MAX_WIDTH, 1 <= height <= TME_CAMERA_MAX_HEIGHT and a known format
 * (TME_PIXEL_GRAYSCALE8 or TME_PIXEL_RGB565): 1, else 0. */
int tme_camera_frame_ok(uint32_t width, uint32_t height, uint8_t format);

/* The TME_CAMERA_HEAD_BYTES bytes that start a frame. Returns that length, or 0 when the
 * size or format is not allowed or the buffer is too small. */
size_t tme_format_camera_head(uint8_t *out, size_t cap, uint32_t seq, uint32_t width,
                              uint32_t height, uint8_t format);

/* The 2 bytes that end the frame: the CRC over the head after its sync bytes, then the
 * TME_CAMERA_PIXEL_BYTES(width, height, format) bytes of `pixels`. */
void tme_camera_frame_crc(const uint8_t *head, const uint8_t *pixels, size_t pixel_bytes,
                          uint8_t out[2]);

/* A whole frame in one buffer (small frames; the host tests). Returns its length, 0 when the
 * size or format is not allowed or the buffer too small. */
size_t tme_format_camera_frame(uint8_t *out, size_t cap, uint32_t seq, uint32_t width,
                               uint32_t height, uint8_t format, const uint8_t *pixels);

/* What a camera's header line says: columns "<width>x<height>" (e.g. "160x120") and units
 * "grayscale8" or "rgb565" (tme_pixel_format_name; "" for an unknown format). */
size_t tme_format_camera_size(char *out, size_t cap, uint32_t width, uint32_t height);
const char *tme_pixel_format_name(uint8_t format);

/* ---------------------------------------------------------------------------------------
 * Commands from the host, one per line. Feed the reader every byte that arrives; it returns
 * a command when a line ends ('\n' or '\r'). Case and surrounding or repeated blanks do not
 * matter ("infer  on" is INFER ON). Empty lines give TME_CMD_NONE. */
typedef enum {
  TME_CMD_NONE = 0,
  TME_CMD_HELLO,
  TME_CMD_START,
  TME_CMD_STOP,
  TME_CMD_INFER_ON,
  TME_CMD_INFER_OFF,
  TME_CMD_UNKNOWN
} tme_command_t;

#define TME_COMMAND_MAX 32

typedef struct {
  char line[TME_COMMAND_MAX + 1]; /* the last complete line, normalised (for error text) */
  uint8_t len;
  uint8_t overflow;
  char pending[TME_COMMAND_MAX + 1];
  uint8_t pending_len;
} tme_command_reader_t;

void tme_command_reader_init(tme_command_reader_t *reader);
tme_command_t tme_command_reader_feed(tme_command_reader_t *reader, uint8_t byte);

/* One whole line (without its line end) -> command. */
tme_command_t tme_parse_command(const char *line);

/* "HELLO", "START", ... or "" for NONE and "?" for UNKNOWN. */
const char *tme_command_name(tme_command_t command);

#ifdef __cplusplus
}  /* extern "C" */

namespace tme {

/* C++ only: a line of text built piece by piece into a fixed buffer (no printf, no heap),
 * e.g. sendError(tme::Text().add("arena of ").add(n).add(" bytes").c_str()). Too long text is
 * cut, never overflows. */
class Text {
 public:
  Text() { buf_[0] = '\0'; }
  Text& add(const char* s) {
    while (s != 0 && *s != '\0' && len_ + 1 < sizeof buf_) buf_[len_++] = *s++;
    buf_[len_] = '\0';
    return *this;
  }
  Text& add(uint32_t value) {
    char digits[12];
    tme_format_uint(digits, sizeof digits, value);
    return add(digits);
  }
  const char* c_str() const { return buf_; }
  size_t size() const { return len_; }

 private:
  char buf_[200];
  size_t len_ = 0;
};

}  /* namespace tme */
#endif

#endif /* TINYML_EDU_PROTOCOL_H_ */
