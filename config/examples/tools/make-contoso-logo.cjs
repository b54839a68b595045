#!/usr/bin/env node
'use strict';
// Draws the fictional Contoso logo of the example organization (a ring mark and
// a pixel-font word mark) and writes it as a PNG with node:zlib only:
// node config/examples/tools/make-contoso-logo.cjs config/examples/contoso/images/contoso-logo.png
const fs = require('node:fs');
const zlib = require('node:zlib');

// Drawn at twice the displayed size (220x56) so it stays sharp on high-density screens.
const K = 2;
const WIDTH = 220 * K;
const HEIGHT = 56 * K;
const pixels = Buffer.alloc(WIDTH * HEIGHT * 4); // RGBA, transparent

function blend(x, y, [r, g, b], alpha) {
  if (x < 0 || y < 0 || x >= WIDTH || y >= HEIGHT || alpha <= 0) return;
  const i = (y * WIDTH + x) * 4;
  const a0 = pixels[i + 3] / 255;
  const a = alpha + a0 * (1 - alpha);
  const mix = (c, c0) => Math.round((c * alpha + c0 * a0 * (1 - alpha)) / a);
  pixels[i] = mix(r, pixels[i]);
  pixels[i + 1] = mix(g, pixels[i + 1]);
  pixels[i + 2] = mix(b, pixels[i + 2]);
  pixels[i + 3] = Math.round(a * 255);
}

// Ring mark with a gap on the right (a "C"), 4x4 supersampled for smooth edges.
const BLUE = [0, 94, 184];
const TEAL = [0, 168, 150];
const cx = 28 * K, cy = 28 * K;
for (let y = 0; y < HEIGHT; y++) {
  for (let x = 0; x < 60 * K; x++) {
    let outer = 0, inner = 0;
    for (let sy = 0; sy < 4; sy++) {
      for (let sx = 0; sx < 4; sx++) {
        const dx = x + (sx + 0.5) / 4 - cx, dy = y + (sy + 0.5) / 4 - cy;
        const d = Math.hypot(dx, dy);
        const angle = Math.atan2(dy, dx);
        if (d <= 24 * K && d >= 14 * K && Math.abs(angle) > 0.6) outer++;
        if (d <= 8 * K) inner++;
      }
    }
    blend(x, y, BLUE, outer / 16);
    blend(x, y, TEAL, inner / 16);
  }
}

// 5x7 pixel font for the word mark.
const GLYPHS = {
  C: ['01110', '10001', '10000', '10000', '10000', '10001', '01110'],
  O: ['01110', '10001', '10001', '10001', '10001', '10001', '01110'],
  N: ['10001', '11001', '10101', '10011', '10001', '10001', '10001'],
  T: ['11111', '00100', '00100', '00100', '00100', '00100', '00100'],
  S: ['01111', '10000', '10000', '01110', '00001', '00001', '11110'],
};
const INK = [38, 50, 56];
const SCALE = 3 * K;
let penX = 66 * K;
for (const letter of 'CONTOSO') {
  GLYPHS[letter].forEach((row, gy) => {
    [...row].forEach((bit, gx) => {
      if (bit !== '1') return;
      for (let y = 0; y < SCALE; y++) for (let x = 0; x < SCALE; x++) blend(penX + gx * SCALE + x, 18 * K + gy * SCALE + y, INK, 1);
    });
  });
  penX += 6 * SCALE + 3 * K;
}

// A thin rule under the word mark, fading from teal to blue.
for (let x = 66 * K; x < 214 * K; x++) {
  const t = (x - 66 * K) / (148 * K);
  const colour = TEAL.map((c, i) => Math.round(c + (BLUE[i] - c) * t));
  for (let y = 44 * K; y < 46 * K; y++) blend(x, y, colour, 0.35 + 0.65 * Math.sin(Math.PI * t));
}

function crc32(buffer) {
  let crc = ~0;
  for (const byte of buffer) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return ~crc >>> 0;
}
function chunk(type, data) {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}
const header = Buffer.alloc(13);
header.writeUInt32BE(WIDTH, 0);
header.writeUInt32BE(HEIGHT, 4);
header[8] = 8; // bit depth
header[9] = 6; // RGBA
const raw = Buffer.alloc(HEIGHT * (1 + WIDTH * 4));
for (let y = 0; y < HEIGHT; y++) pixels.copy(raw, y * (1 + WIDTH * 4) + 1, y * WIDTH * 4, (y + 1) * WIDTH * 4);
const png = Buffer.concat([
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
  chunk('IHDR', header),
  chunk('IDAT', zlib.deflateSync(raw, { level: 9 })),
  chunk('IEND', Buffer.alloc(0)),
]);
fs.writeFileSync(process.argv[2] || 'contoso-logo.png', png);
process.stdout.write(`wrote ${png.length} bytes\n`);
