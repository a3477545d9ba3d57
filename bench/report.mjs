// Statistics, machine facts and the printed table of the benchmark.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'

/** Median, minimum, maximum and relative spread ((max - min) / median) of repeated runs. */
export function summarize(values) {
  const sorted = values.filter((value) => typeof value === 'number').sort((a, b) => a - b)
  if (sorted.length === 0) return { median: null, min: null, max: null, spread: null, runs: values }

  const middle = Math.floor(sorted.length / 2)
  const median =
    sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
  const min = sorted[0]
  const max = sorted[sorted.length - 1]
  return { median, min, max, spread: median === 0 ? null : (max - min) / median, runs: values }
}

export function ratio(numerator, denominator) {
  if (typeof numerator !== 'number' || typeof denominator !== 'number' || denominator === 0) {
    return null
  }
  return numerator / denominator
}

/** Reads the load averages (1, 5 and 15 minutes) and the `uptime` line, to record next to each run. */
export function readLoad() {
  const [one, five, fifteen] = os.loadavg()
  let uptime = ''
  try {
    uptime = execFileSync('uptime', { encoding: 'utf8' }).trim()
  } catch {
    uptime = `load average: ${one.toFixed(2)}, ${five.toFixed(2)}, ${fifteen.toFixed(2)}`
  }
  return { one, five, fifteen, uptime }
}

export function readMachine() {
  const requireFromMiniflare = createRequire(createRequire(import.meta.url).resolve('miniflare'))
  const workerd = requireFromMiniflare('workerd')
  const workerdVersion = execFileSync(workerd.default, ['--version'], { encoding: 'utf8' }).trim()
  const versionOf = (name) =>
    JSON.parse(readFileSync(createRequire(import.meta.url).resolve(`${name}/package.json`), 'utf8'))
      .version

  const cpus = os.cpus()
  return {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    workerd: `${workerdVersion} (npm workerd ${workerd.version})`,
    miniflare: requireFromMiniflare('miniflare/package.json').version,
    wrangler: versionOf('wrangler'),
    autocannon: versionOf('autocannon'),
  }
}

function format(value, digits = 1) {
  if (value === null || value === undefined) return '-'
  if (typeof value !== 'number') return String(value)
  return value.toFixed(digits)
}

function formatSummary(summary, digits = 1) {
  if (summary?.median === null || summary?.median === undefined) return '-'
  const spread = summary.spread === null ? '' : ` ±${(summary.spread * 50).toFixed(0)}%`
  return `${format(summary.median, digits)}${summary.runs.length > 1 ? spread : ''}`
}

/** Prints rows as an aligned text table. */
export function printTable(title, header, rows) {
  const widths = header.map((cell, column) =>
    Math.max(String(cell).length, ...rows.map((row) => String(row[column]).length)),
  )
  const line = (cells) =>
    cells.map((cell, column) => String(cell).padEnd(widths[column])).join('  ')
  console.log(`\n${title}`)
  console.log(line(header))
  console.log(line(widths.map((width) => '-'.repeat(width))))
  for (const row of rows) console.log(line(row))
}

export { format, formatSummary }
