/*
 * tinyml_edu_camera.h - C++ only: send camera frames and the camera's header line over any
 * port with write(const uint8_t*, size_t) (Arduino's Serial on every core, or a test's fake).
 *
 * Both camera sketches (capture_camera_nano: OV7675 through Arduino_OV767X; capture_camera_xiao:
 * OV2640 through esp_camera) send through these two functions, so the frames of the XIAO, whose
 * core is not compiled here, are made by the same code as the Nano's, which is compiled against
 * the real core, and by the host test that checks them byte for byte against
 * tinyml_edu.protocol (tests/test_firmware.py).
 *
 * A frame goes out in three writes (head, the camera buffer as it is, CRC): a QVGA RGB565
 * frame is 150 kB, more than half of a Nano's RAM, so it is never copied.
 */
#ifndef TINYML_EDU_CAMERA_H_
#define TINYML_EDU_CAMERA_H_

#include "tinyml_edu_protocol.h"

namespace tme {

/* Bytes handed to the port per write: small pieces keep a USB CDC driver's buffers happy. */
static const size_t kCameraWriteChunk = 1024;

/* One camera frame: width x height pixels in `format` (TME_PIXEL_GRAYSCALE8 or
 * TME_PIXEL_RGB565, high byte first), row by row from the top. Returns the bytes written,
 * 0 (and writes nothing) when the size or format is not allowed. */
template <class Port>
size_t sendCameraFrame(Port& port, uint32_t seq, uint32_t width, uint32_t height,
                       uint8_t format, const uint8_t* pixels) {
  uint8_t head[TME_CAMERA_HEAD_BYTES];
  uint8_t crc[2];
  if (pixels == 0 || tme_format_camera_head(head, sizeof head, seq, width, height, format) == 0) {
    return 0;
  }
  const size_t n = TME_CAMERA_PIXEL_BYTES(width, height, format);
  tme_camera_frame_crc(head, pixels, n, crc);  // before sending: the buffer may be reused
  port.write(head, sizeof head);
  for (size_t done = 0; done < n; done += kCameraWriteChunk) {
    const size_t left = n - done;
    port.write(pixels + done, left < kCameraWriteChunk ? left : kCameraWriteChunk);
  }
  port.write(crc, sizeof crc);
  return sizeof head + n + sizeof crc;
}

/* The header line of a camera: "#TINYML-EDU 1 board=<board> sensor=camera rate=<fps>
 * columns=<width>x<height> units=<grayscale8|rgb565> *XXXX". `line` needs TME_LINE_MAX bytes.
 * Returns the bytes written (0 when the format is unknown). */
template <class Port>
size_t sendCameraHeader(Port& port, char* line, const char* board, uint32_t fps,
                        uint32_t width, uint32_t height, uint8_t format) {
  char size[24];
  const char* units = tme_pixel_format_name(format);
  if (units[0] == '\0' || tme_format_camera_size(size, sizeof size, width, height) == 0) {
    return 0;
  }
  const size_t n = tme_format_header(line, TME_LINE_MAX, board, "camera", fps, size, units);
  if (n > 0) port.write(reinterpret_cast<const uint8_t*>(line), n);
  return n;
}

}  // namespace tme

#endif  // TINYML_EDU_CAMERA_H_
