/*
 * tinyml_edu_nano33.h - Arduino Nano 33 BLE Sense: which revision is this, and the Rev1 IMU
 * (ST LSM9DS1) spoken to directly over I2C. Arduino-only, header-only C++.
 *
 * Why not the Arduino_LSM9DS1 library: it and Arduino_BMI270_BMM150 (the Rev2 IMU) both
 * define a global object called `IMU`, so a sketch cannot link both, and one sketch could
 * not serve a class with a mix of Rev1 and Rev2 boards. Talking to the LSM9DS1 ourselves
 * takes a few registers (datasheet DocID025715, section 7):
 *
 *   accelerometer + gyroscope at I2C address 0x6B on the internal bus `Wire1`;
 *   WHO_AM_I (0x0F) reads 0x68: this is how a Rev1 board is recognised;
 *   CTRL_REG8 (0x22) = 0x05: software reset (bit 0), register auto-increment (IF_ADD_INC);
 *   CTRL_REG1_G (0x10) = 0x78: gyro 119 Hz (ODR_G = 011), +-2000 dps (FS_G = 11);
 *   CTRL_REG6_XL (0x20) = 0x70: accel 119 Hz (ODR_XL = 011), +-4 g (FS_XL = 10);
 *   CTRL_REG8 (0x22) = 0x44: block data update (BDU) + auto-increment;
 *   OUT_X_L_G (0x18..0x1D) and OUT_X_L_XL (0x28..0x2D): x, y, z as int16 little-endian.
 *
 * Scale factors are the datasheet sensitivities, 0.122 mg/LSB at +-4 g and 70 mdps/LSB at
 * +-2000 dps. (Arduino_LSM9DS1 divides the gyro by 32768/2000, which reads about 13% low;
 * the datasheet figure agrees with what the Rev2's BMI270 reports in dps.)
 */
#ifndef TINYML_EDU_NANO33_H_
#define TINYML_EDU_NANO33_H_

#include <Arduino.h>
#include <Wire.h>

// The Nano 33 BLE (Sense) has its sensors on a second, internal I2C bus.
#ifndef TME_NANO33_WIRE
#define TME_NANO33_WIRE Wire1
#endif

namespace tme_nano33 {

constexpr uint8_t kLsm9ds1Address = 0x6B;  // accelerometer + gyroscope
constexpr uint8_t kWhoAmI = 0x0F;
constexpr uint8_t kWhoAmIValue = 0x68;
constexpr uint8_t kCtrlReg1G = 0x10;
constexpr uint8_t kCtrlReg6XL = 0x20;
constexpr uint8_t kCtrlReg8 = 0x22;
constexpr uint8_t kOutXLG = 0x18;
constexpr uint8_t kOutXLXL = 0x28;

constexpr float kAccelGPerLsb = 0.122e-3f;  // +-4 g
constexpr float kGyroDpsPerLsb = 70e-3f;    // +-2000 dps

inline bool readRegisters(uint8_t reg, uint8_t* dst, size_t n) {
  TME_NANO33_WIRE.beginTransmission(kLsm9ds1Address);
  TME_NANO33_WIRE.write(reg);
  if (TME_NANO33_WIRE.endTransmission(false) != 0) return false;  // repeated start
  if (TME_NANO33_WIRE.requestFrom(kLsm9ds1Address, n) != n) return false;
  for (size_t i = 0; i < n; ++i) dst[i] = (uint8_t)TME_NANO33_WIRE.read();
  return true;
}

inline bool writeRegister(uint8_t reg, uint8_t value) {
  TME_NANO33_WIRE.beginTransmission(kLsm9ds1Address);
  TME_NANO33_WIRE.write(reg);
  TME_NANO33_WIRE.write(value);
  return TME_NANO33_WIRE.endTransmission() == 0;
}

// True when an LSM9DS1 answers at 0x6B with WHO_AM_I 0x68 (call TME_NANO33_WIRE.begin()
// first). Nothing on a Rev2 board sits at 0x6B, so the read fails there.
inline bool lsm9ds1Present() {
  uint8_t id = 0;
  return readRegisters(kWhoAmI, &id, 1) && id == kWhoAmIValue;
}

// Reset and configure: +-4 g and +-2000 dps at 119 Hz, auto-increment, block data update.
inline bool lsm9ds1Begin() {
  if (!writeRegister(kCtrlReg8, 0x05)) return false;
  delay(10);
  return writeRegister(kCtrlReg1G, 0x78) && writeRegister(kCtrlReg6XL, 0x70) &&
         writeRegister(kCtrlReg8, 0x44);
}

inline float toFloat(const uint8_t* p, float scale) {
  return (float)(int16_t)((uint16_t)p[0] | ((uint16_t)p[1] << 8)) * scale;
}

// The latest sample: v[0..2] acceleration in g, v[3..5] angular rate in dps.
inline bool lsm9ds1Read(float v[6]) {
  uint8_t a[6], g[6];
  if (!readRegisters(kOutXLXL, a, 6) || !readRegisters(kOutXLG, g, 6)) return false;
  for (int i = 0; i < 3; ++i) {
    v[i] = toFloat(&a[2 * i], kAccelGPerLsb);
    v[3 + i] = toFloat(&g[2 * i], kGyroDpsPerLsb);
  }
  return true;
}

// "nano33ble_sense_rev1" when the LSM9DS1 answers, else "nano33ble_sense_rev2". For sketches
// that do not use the IMU (the microphone ones) but still name the board in their header.
inline const char* boardId() {
  TME_NANO33_WIRE.begin();
  const bool rev1 = lsm9ds1Present();
  TME_NANO33_WIRE.end();
  return rev1 ? "nano33ble_sense_rev1" : "nano33ble_sense_rev2";
}

}  // namespace tme_nano33

#endif  // TINYML_EDU_NANO33_H_
