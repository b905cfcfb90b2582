// Validates OpenAPI documents with @readme/openapi-parser (the OpenAPI 3.1 schema, plus what a
// schema cannot say: path parameters declared, operation ids unique, …), run by
// dev/tests/openapi.rs. Prints one JSON object: { "<file>": { valid, errors, warnings } }.
import { readFile } from 'node:fs/promises'
import { validate } from '@readme/openapi-parser'

const out = {}
for (const file of process.argv.slice(2)) {
  const doc = JSON.parse(await readFile(file, 'utf8'))
  const r = await validate(doc, { validate: { errors: { colorize: false } } })
  out[file] = { valid: r.valid, errors: r.errors ?? [], warnings: r.warnings ?? [] }
}
console.log(JSON.stringify(out))
