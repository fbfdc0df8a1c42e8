"""Cars on streets seen from above by a small camera: 96 x 96 grayscale frames with the centre
of every car, for counting with a FOMO-style centroid heatmap.

The article the course grew from counts the cars on a street on the device. A camera on a pole,
a bridge or a roof looks down on the street; we draw that view from straight above
(orthographic: no perspective, see the datasheet's limits). Each frame is a *street family*
(a straight avenue, a parking lot, an unpaved road, a diagonal road, an intersection, a
roundabout) at a random scale, angle and offset; cars of six body types and eight paint colours
drive in lanes or stand parked, with windows and sun shadows; motorcycles and pedestrians are
distractors that must not be counted; trees hide parts of cars (a car more than half hidden is
not placed). At night cars are seen mostly by their head- and tail-lights (parked cars have
none) and under street lamps. Then the camera model of ``camera.expose``.

A car counts if its centre is inside the frame. Splits differ in *scene*: train, val and test
use different street families, so test error measures a new street, not a new seed.
"""

from __future__ import annotations

import numpy as np

from tinyml_edu.generators import camera

TASK = "counting"
DESCRIPTION = (
    "Cars on streets seen from above (avenue, parking, unpaved road; diagonal road; intersection, "
    "roundabout): 96 x 96 grayscale uint8 frames, day to night, with the centre of every car; "
    "y is the count. Train, val and test use different street families."
)
CLASSES: tuple[str, ...] = ("car",)
SAMPLE_RATE = None
LICENSE = "CC0-1.0"
DEFAULT_SEED = 1212

SIZE = camera.SIZE
MAX_CARS = 16  # counted cars per frame at most; centroids_<split> is padded to this with NaN
FOMO_CELLS = 12  # the FOMO grid: 12 x 12 cells of 8 x 8 pixels
FRAMES = {"train": 480, "val": 120, "test": 240}  # at scale 1
FAMILIES = {"train": ("avenue", "parking", "dirt"), "val": ("diagonal",),
            "test": ("intersection", "roundabout")}
CONDITIONS = ("day", "dusk", "night")
CONDITION_WEIGHTS = (0.5, 0.25, 0.25)
LIGHT_RANGES = {"day": (0.5, 1.6), "dusk": (0.05, 0.4), "night": (0.003, 0.03)}
PIXELS_PER_M = (2.2, 3.4)  # camera height: a 4.5 m car is 10-15 pixels long
LANE_M = 3.3
# Body types: length and width in metres, and whether the rear is an open bed.
BODIES = {"hatchback": (3.9, 1.7, False), "sedan": (4.6, 1.8, False),
          "suv": (4.8, 1.95, False), "pickup": (5.3, 1.9, True), "van": (5.1, 2.0, False),
          "minibus": (6.0, 2.1, False)}
PAINT = {"white": 0.85, "silver": 0.62, "grey": 0.4, "black": 0.07, "red": 0.28,
         "blue": 0.2, "yellow": 0.72, "green": 0.24}  # albedo of the paint in grayscale

EXTRA = {
    "image": "uint8 grayscale, shape (96, 96, 1); 0 black, 255 white",
    "labels": "y_<split>: number of cars whose centre is in the frame; centroids_<split>: "
              f"float32 (n, {MAX_CARS}, 2) (row, column) of those centres in pixels, NaN-padded",
    "fomo_grid": f"{FOMO_CELLS} x {FOMO_CELLS} cells of {SIZE // FOMO_CELLS} pixels: "
                 "tinyml_edu.datasets.centroid_grid",
    "families": {k: list(v) for k, v in FAMILIES.items()},
    "conditions": list(CONDITIONS),
    "light_ranges": {k: list(v) for k, v in LIGHT_RANGES.items()},
    "bodies": list(BODIES),
    "paint": list(PAINT),
    "distractors": ["motorcycle", "pedestrian", "manhole", "road markings", "tree shadow"],
    "groups": "group_<split>: street family; condition_<split>: day, dusk or night; "
              "light_<split>: light level (1.0 = bright overcast day)",
}


# ---------------------------------------------------------------------------------------------
# Geometry: streets are described by lanes; a lane maps arc length to a position and heading


class Lane:
    """A straight lane (``radius`` 0) or a circular one around ``origin``."""

    def __init__(self, origin, angle, offset=0.0, radius=0.0, span=(-90.0, 90.0),
                 parked=False, flip=False, bay=None, keep_out=0.0):
        self.origin, self.angle, self.offset = np.asarray(origin, float), angle, offset
        self.radius, self.span, self.parked, self.flip = radius, span, parked, flip
        self.bay = bay  # parking rows: the cars' angle to the row
        self.keep_out = keep_out  # no car nearer than this to ``origin`` (roundabout exits)

    def at(self, t: float) -> tuple[np.ndarray, float]:
        """Position (row, column) and heading (radians) at arc length ``t`` (pixels)."""
        if self.radius:
            a = self.angle + t / self.radius
            pos = self.origin + self.radius * np.array([np.sin(a), np.cos(a)])
            heading = a + np.pi / 2
        else:
            d = np.array([np.sin(self.angle), np.cos(self.angle)])
            n = np.array([d[1], -d[0]])
            pos = self.origin + t * d + self.offset * n
            heading = self.angle
        return pos, heading + (np.pi if self.flip else 0.0)


def _across(rr, cc, origin, angle):
    """Signed distance of grid points across the line through origin at angle."""
    return (rr - origin[0]) * np.cos(angle) - (cc - origin[1]) * np.sin(angle)


def _box(rr, cc, centre, heading, length, width, corner=0.0):
    """Signed distance to a rounded rectangle (negative inside), in pixels."""
    dr, dc = rr - centre[0], cc - centre[1]
    u = dr * np.sin(heading) + dc * np.cos(heading)  # along the heading
    v = dr * np.cos(heading) - dc * np.sin(heading)
    qu, qv = np.abs(u) - (length / 2 - corner), np.abs(v) - (width / 2 - corner)
    outside = np.hypot(np.maximum(qu, 0), np.maximum(qv, 0))
    return outside + np.minimum(np.maximum(qu, qv), 0) - corner


def _window(rr, centre, reach):
    """Slices of the 2x grid around ``centre`` (row, column) within ``reach`` pixels."""
    step, first, n = rr[1, 0] - rr[0, 0], rr[0, 0], rr.shape[0]
    lo = np.floor((centre - reach - first) / step).astype(int).clip(0, n)
    hi = np.ceil((centre + reach - first) / step).astype(int).clip(0, n)
    return slice(lo[0], hi[0]), slice(lo[1], hi[1])


# ---------------------------------------------------------------------------------------------
# Streets: ground albedo, lanes, and where trees and pedestrians may stand


def _asphalt(rng, shape):
    tone = rng.uniform(0.12, 0.3)
    return tone * (0.85 + 0.3 * camera.fractal_noise(rng, 12, 3, shape[0]))


def _surroundings(rng, rr, cc):
    """What lies beyond the street: roofs (some corrugated), yards and grass."""
    out = rng.uniform(0.15, 0.35) * (0.8 + 0.4 * camera.fractal_noise(rng, 8, 2))  # grass
    for _ in range(rng.integers(2, 7)):
        centre = rng.uniform(-10, SIZE + 10, 2)
        half = rng.uniform(6, 22, 2)
        rot = rng.uniform(0, np.pi)
        inside = _box(rr, cc, centre, rot, 2 * half[0], 2 * half[1]) < 0
        tone = rng.uniform(0.2, 0.85)
        if rng.random() < 0.4:  # corrugated iron: fine ridges
            ridges = 0.9 + 0.1 * np.sin(2 * np.pi * _across(rr, cc, centre, rot) / 1.2)
            out = np.where(inside, tone * ridges, out)
        else:
            out = np.where(inside, tone, out)
    return out


def street(rng: np.random.Generator, family: str, scale: float
           ) -> tuple[np.ndarray, list[Lane], np.ndarray]:
    """Ground albedo (2x grid), the lanes, and a mask of where trees and people may stand."""
    rr, cc = camera.coords()
    lane_px = LANE_M * scale
    ground = _surroundings(rng, rr, cc)
    sidewalk_mask = np.zeros(rr.shape, bool)
    lanes: list[Lane] = []

    def straight_road(angle, centre, n_lanes, paved=True, markings=True, parking=True,
                      sidewalk=True):
        nonlocal ground, sidewalk_mask
        half = n_lanes * lane_px / 2 + (2.4 * scale if parking else 0.0)
        v = _across(rr, cc, centre, angle)
        walk = 2.5 * scale if sidewalk else 0.0
        if sidewalk:
            side = (np.abs(v) >= half) & (np.abs(v) < half + walk)
            tiles = 0.5 + 0.1 * (np.sin(2 * np.pi * v / 1.5) > 0.9)
            ground = np.where(side, rng.uniform(0.45, 0.7) * tiles, ground)
            sidewalk_mask |= side
        else:
            sidewalk_mask |= (np.abs(v) >= half) & (np.abs(v) < half + 3 * scale)
        road = np.abs(v) < half
        if paved:
            ground = np.where(road, _asphalt(rng, rr.shape), ground)
        else:  # packed earth with two ruts
            earth = rng.uniform(0.35, 0.55) * (0.8 + 0.4 * camera.fractal_noise(rng, 10, 3))
            ruts = np.exp(-((np.abs(v) - half / 2) / (0.4 * scale)) ** 2) * 0.15
            ground = np.where(road, earth * (1 - ruts), ground)
            half += rng.uniform(0, 1.5) * scale  # soft, ragged edges
        if markings:
            along = (rr - centre[0]) * np.sin(angle) + (cc - centre[1]) * np.cos(angle)
            dash = (np.abs(v) < 0.12 * scale) & ((along % (6 * scale)) < 3 * scale)
            ground = np.where(dash, rng.uniform(0.7, 0.9), ground)
        for k in range(n_lanes):
            offset = (k - (n_lanes - 1) / 2) * lane_px
            lanes.append(Lane(centre, angle, offset, flip=offset > 0))
        if parking:
            for sign in (-1, 1):
                lanes.append(Lane(centre, angle, sign * (half - 1.2 * scale), parked=True,
                                  flip=bool(rng.random() < 0.5)))
        return half

    centre = SIZE / 2 + rng.normal(0, 10, 2)
    if family in ("avenue", "diagonal"):
        base = rng.choice([0.0, np.pi / 2])
        tilt = rng.uniform(-0.2, 0.2) if family == "avenue" else \
            rng.choice([-1, 1]) * rng.uniform(0.45, 1.1)
        straight_road(base + tilt, centre, int(rng.choice([2, 2, 4])),
                      parking=bool(rng.random() < 0.8))
    elif family == "dirt":
        straight_road(rng.choice([0.0, np.pi / 2]) + rng.uniform(-0.3, 0.3), centre, 2,
                      paved=False, markings=False, parking=bool(rng.random() < 0.5),
                      sidewalk=False)
    elif family == "parking":
        ground = _asphalt(rng, rr.shape) * rng.uniform(0.9, 1.4)
        angle = rng.choice([0.0, np.pi / 2]) + rng.uniform(-0.15, 0.15)
        bay_angle = rng.choice([np.pi / 2, np.pi / 4, -np.pi / 4]) + angle
        row_gap = rng.uniform(11, 14) * scale
        for k in range(-3, 4):
            row = centre + k * row_gap * np.array([np.cos(angle), -np.sin(angle)])
            v = _across(rr, cc, row, angle)
            along = (rr - row[0]) * np.sin(angle) + (cc - row[1]) * np.cos(angle)
            bays = (np.abs(v) < 2.6 * scale) & ((along % (2.6 * scale)) < 0.15 * scale)
            ground = np.where(bays, rng.uniform(0.6, 0.85), ground)
            lanes.append(Lane(row, angle, 0.0, parked=True, bay=bay_angle - angle))
        sidewalk_mask |= camera.smooth_noise(rng, 3) > 0.8  # islands with trees
    elif family == "intersection":
        a = rng.uniform(0, np.pi / 2)
        straight_road(a, centre, 2, parking=False)
        straight_road(a + np.pi / 2 + rng.uniform(-0.2, 0.2), centre, int(rng.choice([2, 4])),
                      parking=False)
        # Zebra crossings on each arm of the junction.
        for arm in range(4):
            heading = a + arm * np.pi / 2
            d = np.array([np.sin(heading), np.cos(heading)])
            spot = centre + d * 5.5 * LANE_M * scale / 2
            stripes = (np.abs(_across(rr, cc, spot, heading + np.pi / 2)) < 1.2 * scale) & \
                (np.abs(_across(rr, cc, spot, heading)) < 3.3 * scale) & \
                (np.sin(2 * np.pi * _across(rr, cc, spot, heading) / (1.0 * scale)) > 0)
            ground = np.where(stripes, rng.uniform(0.7, 0.9), ground)
    elif family == "roundabout":
        radius_m = rng.uniform(7, 12)
        r_px = np.hypot(rr - centre[0], cc - centre[1])
        for _ in range(int(rng.integers(2, 5))):  # the exits
            straight_road(rng.uniform(0, np.pi), centre, 2, parking=False, markings=False)
        ring = np.abs(r_px - radius_m * scale) < 1.1 * lane_px
        ground = np.where(ring, _asphalt(rng, rr.shape), ground)
        island = r_px < (radius_m * scale - 1.1 * lane_px)
        ground = np.where(island, rng.uniform(0.15, 0.3) *
                          (0.8 + 0.4 * camera.fractal_noise(rng, 10, 2)), ground)
        sidewalk_mask |= island
        lanes = [lane for lane in lanes if rng.random() < 0.6]
        for lane in lanes:
            lane.keep_out = radius_m * scale + 1.6 * lane_px
        for k in range(2):
            lanes.append(Lane(centre, rng.uniform(0, 2 * np.pi),
                              radius=(radius_m + (k - 0.5) * LANE_M) * scale,
                              span=(0.0, 2 * np.pi * (radius_m + (k - 0.5) * LANE_M) * scale)))
    else:
        raise ValueError(f"unknown street family {family!r}")
    for _ in range(rng.integers(0, 3)):  # manhole covers
        spot = rng.uniform(0, SIZE, 2)
        ground = np.where(np.hypot(rr - spot[0], cc - spot[1]) < 0.35 * scale, 0.1, ground)
    return ground, lanes, sidewalk_mask


# ---------------------------------------------------------------------------------------------
# Cars


def _place(rng, lanes, scale, density, occupied_lr):
    """Vehicles along the lanes without overlaps: list of dicts (centre, heading, body...)."""
    rr, cc = camera.coords()
    vehicles = []
    for lane in lanes:
        t = lane.span[0] + rng.uniform(0, 8) * scale
        while t < lane.span[1]:
            if lane.bay is not None or lane.parked:
                gap = rng.uniform(0.3, 1.2) * scale
                present = rng.random() < (0.15 + 0.5 * density if lane.bay is not None
                                          else 0.3 + 0.6 * density)
            else:
                gap = (2.0 + rng.exponential(4.0 + 40.0 * (1 - density))) * scale
                present = True
            bike = not lane.parked and rng.random() < 0.12
            body = "motorcycle" if bike else str(rng.choice(list(BODIES)))
            length, width = (2.0, 0.8) if bike else BODIES[body][:2]
            along = width if lane.bay is not None else length
            centre, heading = lane.at(t + along * scale / 2)
            if lane.bay is not None:
                heading += lane.bay + (np.pi if rng.random() < 0.5 else 0.0)
            heading += rng.normal(0, 0.04 if not lane.parked else 0.08)
            t += along * scale + gap
            if not present or density <= 0:
                continue
            if np.hypot(*(centre - lane.origin)) < lane.keep_out:
                continue
            if not (-10 < centre[0] < SIZE + 10 and -10 < centre[1] < SIZE + 10):
                continue
            window = _window(rr, centre, length * scale)
            inside = _box(rr[window], cc[window], centre, heading, (length + 0.6) * scale,
                          (width + 0.4) * scale) < 0
            if (occupied_lr[window] & inside).any():
                continue  # would overlap another vehicle
            occupied_lr[window] |= inside
            vehicles.append({"centre": centre, "heading": heading, "body": body,
                             "length": length * scale, "width": width * scale,
                             "paint": str(rng.choice(list(PAINT))),
                             "moving": not lane.parked, "window": window, "mask": inside})
    return vehicles


def _draw_vehicle(rng, albedo, rr, cc, v):
    """Paint one vehicle (car or motorcycle) into the 2x-grid albedo, in place."""
    w = v["window"]
    r, c = rr[w], cc[w]
    h, centre, length, width = v["heading"], v["centre"], v["length"], v["width"]
    d = np.array([np.sin(h), np.cos(h)])  # forward
    if v["body"] == "motorcycle":
        body = _box(r, c, centre, h, length, width * 0.6, width * 0.3) < 0
        albedo[w] = np.where(body, rng.uniform(0.05, 0.5), albedo[w])
        rider = np.hypot(r - centre[0], c - centre[1]) < width * 0.55
        albedo[w] = np.where(rider, rng.uniform(0.05, 0.4), albedo[w])
        return
    paint = PAINT[v["paint"]] * rng.uniform(0.9, 1.1)
    body = _box(r, c, centre, h, length, width, 0.25 * width) < 0
    albedo[w] = np.where(body, paint, albedo[w])
    bed = BODIES[v["body"]][2]
    # Windscreen, roof and rear window: bands across the body.
    u = (r - centre[0]) * d[0] + (c - centre[1]) * d[1]  # forward of the centre, pixels
    across = np.abs((r - centre[0]) * d[1] - (c - centre[1]) * d[0])
    glass = rng.uniform(0.08, 0.3)
    front = 0.12 if v["body"] in ("van", "minibus") else 0.22
    screen = body & (u > length * (0.5 - front - 0.14)) & (u < length * (0.5 - front)) & \
        (across < width * 0.42)
    rear_lo = -0.2 if bed else -0.42
    rear = body & (u < length * rear_lo + length * 0.1) & (u > length * rear_lo) & \
        (across < width * 0.4)
    albedo[w] = np.where(screen | rear, glass, albedo[w])
    roof = body & (u <= length * (0.5 - front - 0.14)) & (u >= length * rear_lo + length * 0.1) \
        & (across < width * 0.4)
    albedo[w] = np.where(roof, np.clip(paint * rng.uniform(0.95, 1.2), 0, 0.95), albedo[w])
    if bed:  # the open bed of a pickup, darker inside
        load = body & (u < length * -0.22) & (across < width * 0.4)
        albedo[w] = np.where(load, paint * 0.5, albedo[w])


def _lights(rr, cc, vehicles, streak):
    """Emission of head- and tail-lights of moving vehicles (2x grid), and their beams'
    extra light on the road ahead (illumination, output grid)."""
    emission = np.zeros(rr.shape)
    beams = np.zeros(rr.shape)
    for v in vehicles:
        if not v["moving"]:
            continue
        h, c0, length, width = v["heading"], v["centre"], v["length"], v["width"]
        d = np.array([np.sin(h), np.cos(h)])
        n = np.array([d[1], -d[0]])
        sides = (0.0,) if v["body"] == "motorcycle" else (-0.35, 0.35)
        for s in sides:
            for end, power in ((0.5, 3.0), (-0.5, 0.6)):  # head-lights, tail-lights
                p = c0 + d * length * end + n * width * s
                q = p - d * streak  # a moving light smears during a long exposure
                dist = camera.polyline_distance(rr, cc, np.stack([p, q]), reach=3.0)
                emission += power * np.exp(-(dist / 0.7) ** 2)
        ahead = c0 + d * (length / 2 + 4 * width)
        along = (rr - ahead[0]) * d[0] + (cc - ahead[1]) * d[1]
        side = (rr - ahead[0]) * n[0] + (cc - ahead[1]) * n[1]
        beams += 0.25 * np.exp(-(along / (3 * width)) ** 2 - (side / (1.2 * width)) ** 2)
    return emission, beams


def _trees(rng, rr, cc, where, scale):
    """Canopy mask and albedo of 0-4 trees standing where ``where`` is true."""
    canopy = np.zeros(rr.shape, bool)
    spots = np.argwhere(where)
    for _ in range(rng.integers(0, 5) if len(spots) else 0):
        spot = (spots[rng.integers(len(spots))] + 0.5) / camera.SUPER
        radius = rng.uniform(2.0, 4.5) * scale
        ragged = radius * (0.75 + 0.5 * camera.smooth_noise(rng, 10))
        canopy |= np.hypot(rr - spot[0], cc - spot[1]) < ragged
    leaves = rng.uniform(0.08, 0.25) * (0.6 + 0.8 * camera.fractal_noise(rng, 24, 2))
    return canopy, leaves


# ---------------------------------------------------------------------------------------------
# One frame


def make_frame(rng: np.random.Generator, family: str, condition: str
               ) -> tuple[np.ndarray, np.ndarray, float]:
    """One uint8 frame (96, 96), the (row, column) centres of its counted cars, light level."""
    rr, cc = camera.coords()
    scale = rng.uniform(*PIXELS_PER_M)
    albedo, lanes, free = street(rng, family, scale)
    density = 0.0 if rng.random() < 0.08 else rng.uniform(0.05, 1.0)
    canopy, leaves = _trees(rng, rr, cc, free, scale)
    vehicles = _place(rng, lanes, scale, density, np.zeros(rr.shape, bool))
    # A car more than half hidden under a tree is not placed: nobody could count it.
    vehicles = [v for v in vehicles if (v["mask"] & canopy[v["window"]]).sum()
                <= 0.5 * v["mask"].sum()]
    cars = [v for v in vehicles if v["body"] != "motorcycle"
            and 0 <= v["centre"][0] < SIZE and 0 <= v["centre"][1] < SIZE]
    if len(cars) > MAX_CARS:  # keep the frame countable: drop the extra cars
        drop = {id(v) for v in cars[MAX_CARS:]}
        vehicles = [v for v in vehicles if id(v) not in drop]
        cars = cars[:MAX_CARS]
    level = float(np.exp(rng.uniform(*np.log(LIGHT_RANGES[condition]))))
    sun = condition == "day" and rng.random() < 0.7
    shadow = np.zeros(rr.shape)
    if sun:  # hard shadows, offset away from the sun
        offset = rng.uniform(0.6, 2.0) * scale * np.array(
            [np.sin(a := rng.uniform(0, 2 * np.pi)), np.cos(a)])
        for v in vehicles:
            shifted = dict(v, centre=v["centre"] + offset)
            w = _window(rr, shifted["centre"], v["length"])
            inside = _box(rr[w], cc[w], shifted["centre"], v["heading"], v["length"],
                          v["width"], 0.25 * v["width"]) < 0
            shadow[w] = np.maximum(shadow[w], inside)
    for v in vehicles:
        _draw_vehicle(rng, albedo, rr, cc, v)
    for _ in range(rng.integers(0, 4)):  # pedestrians on the sidewalks
        spots = np.argwhere(free)
        if len(spots):
            spot = (spots[rng.integers(len(spots))] + 0.5) / camera.SUPER
            head = np.hypot(rr - spot[0], cc - spot[1]) < 0.35 * scale
            albedo = np.where(head, rng.uniform(0.05, 0.6), albedo)
    albedo = np.where(canopy, leaves, albedo)
    light = camera.illumination(rng, level)
    if sun:
        light = light * (1 - 0.55 * camera.downsample(np.maximum(shadow, canopy * 0.8)))
    emission = None
    if condition != "day":
        night = condition == "night"
        streak = rng.uniform(0, 4) if night else 0.0
        glow, beams = _lights(rr, cc, vehicles, streak)
        emission = camera.downsample(glow) * (0.3 if night else 0.1)
        lamps = np.zeros((SIZE, SIZE))
        r_out, c_out = np.meshgrid(np.arange(SIZE) + 0.5, np.arange(SIZE) + 0.5, indexing="ij")
        for _ in range(rng.integers(1, 5) if night else 0):  # street lamps' pools of light
            spot = rng.uniform(-10, SIZE + 10, 2)
            lamps += rng.uniform(0.05, 0.2) * np.exp(
                -((r_out - spot[0]) ** 2 + (c_out - spot[1]) ** 2) / (2 * (6 * scale) ** 2))
        light = light + lamps + camera.downsample(beams) * (0.05 if night else 0.02)
    defocus = rng.uniform(0.0, 1.2) if rng.random() < 0.5 else 0.0
    shake = (rng.uniform(0, 3), rng.uniform(0, np.pi)) if rng.random() < 0.2 else (0.0, 0.0)
    frame = camera.expose(rng, camera.downsample(albedo), light, emission, defocus, shake)
    centres = np.array([v["centre"] for v in cars], np.float32).reshape(-1, 2)
    return frame, centres, level


def split_counts(scale: float = 1.0) -> dict[str, int]:
    return {s: max(3, int(round(n * scale))) for s, n in FRAMES.items()}


def generate(seed: int = DEFAULT_SEED, scale: float = 1.0) -> dict[str, np.ndarray]:
    """Per split: ``x`` uint8 (n, 96, 96, 1), ``y`` int64 car count, ``centroids`` float32
    (n, MAX_CARS, 2) NaN-padded (row, column), ``group`` street family, ``condition``, ``light``.
    """
    out: dict[str, np.ndarray] = {}
    for stream, (split, count) in enumerate(split_counts(scale).items()):
        families = FAMILIES[split]
        xs, cents, ys, groups, conditions, lights = [], [], [], [], [], []
        for i in range(count):
            # One generator per frame: a frame does not depend on how many come before it.
            rng = np.random.default_rng([seed, stream, i])
            family = families[i % len(families)]
            condition = CONDITIONS[rng.choice(len(CONDITIONS), p=CONDITION_WEIGHTS)]
            frame, centres, level = make_frame(rng, family, condition)
            padded = np.full((MAX_CARS, 2), np.nan, np.float32)
            padded[:len(centres)] = centres
            xs.append(frame)
            cents.append(padded)
            ys.append(len(centres))
            groups.append(family)
            conditions.append(condition)
            lights.append(level)
        out[f"x_{split}"] = np.stack(xs)[..., None]
        out[f"y_{split}"] = np.array(ys, np.int64)
        out[f"centroids_{split}"] = np.stack(cents)
        out[f"group_{split}"] = np.array(groups)
        out[f"condition_{split}"] = np.array(conditions)
        out[f"light_{split}"] = np.array(lights, np.float32)
    return out
