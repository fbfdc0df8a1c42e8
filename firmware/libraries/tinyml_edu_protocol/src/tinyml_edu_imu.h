/*
 * tinyml_edu_imu.h - one IMU interface for the Nano 33 BLE Sense Rev1 and Rev2, detected at
 * start-up. Arduino-only, header-only C++; used by capture_imu and by the inference template.
 *
 * Detection (tme_imu::begin):
 *   1. Wire1.begin(), read register 0x0F of I2C address 0x6B. 0x68 means an LSM9DS1: a Rev1
 *      board. It is configured directly (tinyml_edu_nano33.h): +-4 g, +-2000 dps, 119 Hz.
 *   2. Otherwise Wire1.end() and IMU.begin() of the Arduino_BMI270_BMM150 library: success
 *      means a BMI270 (+ BMM150 magnetometer): a Rev2 board. The library sets +-4 g,
 *      +-2000 dps, 100 Hz and reports g and dps.
 *   3. Neither: kNone (the sketch prints "E no IMU found").
 *
 * The sketch must include <Arduino_BMI270_BMM150.h> (library "Arduino_BMI270_BMM150") -
 * never <Arduino_LSM9DS1.h>, whose global `IMU` would clash with the BMI270 one.
 */
#ifndef TINYML_EDU_IMU_H_
#define TINYML_EDU_IMU_H_

#include <Arduino.h>
#include <Wire.h>
#include <Arduino_BMI270_BMM150.h>

#include "tinyml_edu_nano33.h"

namespace tme_imu {

enum Kind { kNone = 0, kLsm9ds1 = 1, kBmi270 = 2 };

constexpr int kChannels = 6;  // ax, ay, az in g; gx, gy, gz in dps
constexpr const char* kColumns = "ax,ay,az,gx,gy,gz";
constexpr const char* kUnits = "g,g,g,dps,dps,dps";

inline Kind& detected() {
  static Kind kind = kNone;
  return kind;
}

inline Kind begin() {
  TME_NANO33_WIRE.begin();
  TME_NANO33_WIRE.setClock(400000);
  if (tme_nano33::lsm9ds1Present() && tme_nano33::lsm9ds1Begin()) {
    detected() = kLsm9ds1;
    return kLsm9ds1;
  }
  TME_NANO33_WIRE.end();  // IMU.begin() starts the bus again itself
  if (IMU.begin()) {
    TME_NANO33_WIRE.setClock(400000);
    detected() = kBmi270;
    return kBmi270;
  }
  detected() = kNone;
  return kNone;
}

// One sample: v[0..2] acceleration in g, v[3..5] angular rate in dps.
inline bool read(float v[kChannels]) {
  switch (detected()) {
    case kLsm9ds1:
      return tme_nano33::lsm9ds1Read(v);
    case kBmi270:
      return IMU.readAcceleration(v[0], v[1], v[2]) && IMU.readGyroscope(v[3], v[4], v[5]);
    default:
      return false;
  }
}

inline const char* name() {
  switch (detected()) {
    case kLsm9ds1:
      return "LSM9DS1 (Rev1)";
    case kBmi270:
      return "BMI270+BMM150 (Rev2)";
    default:
      return "none";
  }
}

inline const char* boardId() {
  return detected() == kLsm9ds1 ? "nano33ble_sense_rev1" : "nano33ble_sense_rev2";
}

}  // namespace tme_imu

#endif  // TINYML_EDU_IMU_H_
