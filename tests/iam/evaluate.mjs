// Runs every IAM request tests/iam/calls.py made of the suites' calls
// through @cloud-copilot/iam-simulate (a real policy evaluator that also
// validates actions, ARN formats and condition keys against AWS's published
// service data). Fails on any request whose result is not the expected one,
// and on any call the mapping did not know.
import { readFileSync } from 'node:fs'
import { runSimulation } from '@cloud-copilot/iam-simulate'

const input = JSON.parse(readFileSync(process.argv[2], 'utf8'))
const failures = [...input.problems]
const seen = new Map()
let allowed = 0
let denied = 0
for (const s of input.simulations) {
  // The same request (principal, action, resource, context, policies) once.
  const key = JSON.stringify([s.request, s.identityPolicies, s.resourcePolicy ?? null, s.expect])
  if (seen.has(key)) continue
  seen.set(key, true)
  const sim = {
    request: s.request,
    identityPolicies: s.identityPolicies,
    serviceControlPolicies: [],
    resourceControlPolicies: [],
  }
  if (s.resourcePolicy) sim.resourcePolicy = s.resourcePolicy
  const result = await runSimulation(sim, {})
  if (result.errors) {
    failures.push(`${s.where}: ${s.call}: ${s.request.action} on ${s.request.resource.resource}: the evaluator refused the request itself: ${JSON.stringify(result.errors)}`)
    continue
  }
  const got = result.analysis?.result ?? result.overallResult
  const ok = s.expect === 'Allowed' ? got === 'Allowed' : got !== 'Allowed'
  if (!ok) {
    failures.push(`${s.where}: ${s.call} as the ${s.who}: ${s.request.action} on ${s.request.resource.resource} ` +
      `(${JSON.stringify(s.request.contextVariables)}) is ${got}, expected ${s.expect}${s.why ? ' ' + s.why : ''}`)
  } else if (s.expect === 'Allowed') {
    allowed++
  } else {
    denied++
  }
}
for (const f of failures) console.log(`iam: ${f}`)
console.log(`iam: ${input.product_calls} calls of the product recorded; ${seen.size} distinct IAM requests: ` +
  `${allowed} allowed as expected, ${denied} denied as expected (the opt-in tag missing, a region the role does not list), ${failures.length} wrong`)
process.exit(failures.length ? 1 : 0)
