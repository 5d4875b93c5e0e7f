// make iam: every call of the IAM ledger (infra/iam/calls.json, what the suite's functions
// asked of AWS) evaluated against the function's effective policy from template.yaml
// (infra/iam/resolve.py), with the KMS key's policy where the call is on a key. The
// evaluation is iam-simulate's (@cloud-copilot/iam-simulate, AGPL-3.0: a development tool
// run here and in CI, never shipped inside a function), not IAM semantics of our own.
//
// Fails when a call is not allowed (naming the function, the call and the statement that
// denied it or the statements that nearly allowed it), when the ledger names a function the
// template lacks, and when a grant is used by no recorded call and has no written reason
// beside it (a function's Metadata.IamUnusedGrants, or the reason kept with an AWS managed
// policy). Ends with one summary line.
//
// Usage: node check.mjs RESOLVED.json CALLS.json

import { readFileSync } from 'node:fs'
import { loadPolicy } from '@cloud-copilot/iam-policy'
import { runSimulation } from '@cloud-copilot/iam-simulate'

// The pinned simulator's own evaluation entry point (what runSimulation calls after it has
// validated the request), for calls with KMS encryption-context keys: see below.
const internal = (path) =>
  import(new URL(`./node_modules/@cloud-copilot/iam-simulate/dist/esm/${path}`, import.meta.url))
const { authorize } = await internal('core_engine/CoreSimulatorEngine.js')
const { AwsRequestImpl } = await internal('request/request.js')
const { RequestContextImpl } = await internal('requestContext.js')
const { DiscoveryContextKeyConstraints } = await internal('context_keys/discoveryContextKeyConstraints.js')

/** The simulator's analysis of `simulation` with every context key of `context`. */
function analyse(simulation, context) {
  const { request } = simulation
  return authorize({
    request: new AwsRequestImpl(request.principal, request.resource, request.action, new RequestContextImpl(context), false),
    sessionPolicy: undefined,
    identityPolicies: simulation.identityPolicies.map((p) => loadPolicy(p.policy, { name: p.name })),
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: simulation.resourcePolicy ? loadPolicy(simulation.resourcePolicy, { name: 'key policy' }) : undefined,
    permissionBoundaries: undefined,
    vpcEndpointPolicies: undefined,
    simulationParameters: { simulationMode: 'Strict', discoveryContextKeyConstraints: new DiscoveryContextKeyConstraints([]) },
    serviceSettings: { s3: {} },
  })
}

const [resolvedPath, callsPath] = process.argv.slice(2)
const resolved = JSON.parse(readFileSync(resolvedPath, 'utf8'))
const calls = JSON.parse(readFileSync(callsPath, 'utf8'))
const problems = []

const asList = (v) => (v === undefined ? [] : Array.isArray(v) ? v : [v])
// IAM's wildcards in actions and resources: * (any run) and ? (one character), case-insensitive for actions.
const glob = (pattern, value, caseless) => {
  const escaped = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')
  return new RegExp(`^${escaped}$`, caseless ? 'i' : '').test(value)
}

/** A statement's label: policy, then Sid or position. */
const label = (policy, statement, index) => `${policy}#${statement.Sid ?? `statement ${index + 1}`}`

/** The grants a function holds: (policy, statement, action, resource) of every Allow. */
function grantsOf(name, fn) {
  const grants = []
  for (const policy of fn.policies) {
    asList(policy.document.Statement).forEach((statement, index) => {
      if (statement.Effect !== 'Allow') return
      for (const action of asList(statement.Action)) {
        for (const resource of asList(statement.Resource)) {
          grants.push({ fn: name, policy: policy.name, index, sid: statement.Sid, statement, action, resource, reason: policy.reason })
        }
      }
    })
  }
  // Key policies that name this function's role grant it directly.
  for (const [key, document] of Object.entries(resolved.key_policies)) {
    asList(document.Statement).forEach((statement, index) => {
      if (statement.Effect !== 'Allow') return
      const principals = asList(statement.Principal?.AWS)
      if (!principals.includes(fn.role)) return
      for (const action of asList(statement.Action)) {
        grants.push({ fn: name, policy: `key policy of ${key}`, keyArn: key, index, sid: statement.Sid, statement, action, resource: key })
      }
    })
  }
  return grants
}

/** Why a statement that names the call's action and resource did not allow it. */
function nearMiss(analysis) {
  const failed = (analysis.explain.conditions ?? [])
    .filter((c) => !c.matches)
    .map((c) => `${c.operator} ${c.conditionKeyValue}`)
  return `${analysis.policyId ?? 'the key policy'}#${analysis.explain.identifier}${failed.length ? ` (its condition ${failed.join(', ')} does not hold)` : ''}`
}

const used = new Set()
let allowed = 0
for (const call of calls) {
  const fn = resolved.functions[call.function]
  const what = `${call.function}: ${call.action} on ${call.resource} with ${JSON.stringify(call.context)}`
  if (!fn) {
    problems.push(`${what}\n    template.yaml has no function ${call.function}`)
    continue
  }
  const simulation = {
    identityPolicies: fn.policies.map((p) => ({ name: p.name, policy: p.document })),
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    request: {
      principal: fn.role,
      action: call.action,
      resource: { resource: call.resource, accountId: resolved.account },
      contextVariables: call.context,
    },
  }
  const keyPolicy = resolved.key_policies[call.resource]
  if (keyPolicy) simulation.resourcePolicy = keyPolicy
  const response = await runSimulation(simulation, {})
  if (response.resultType === 'error') {
    problems.push(`${what}\n    the simulator refused the request: ${JSON.stringify(response.errors)}`)
    continue
  }
  // iam-simulate checks each context key against the action's documented keys, but matches
  // variable keys only in the `prefix/name` form, so it drops `kms:EncryptionContext:<name>`
  // (a `prefix:name` key) before evaluating. Any other dropped key is a ledger naming a key
  // AWS does not evaluate for the action. With encryption-context keys the call is evaluated
  // again, validated, with its whole context (`analyse`).
  const encryptionContext = (k) => /^kms:EncryptionContext:/i.test(k)
  const ignored = (response.result?.ignoredContextKeys ?? []).filter((k) => !encryptionContext(k))
  if (ignored.length) {
    problems.push(`${what}\n    AWS evaluates no such context key for ${call.action}: ${ignored.join(', ')}`)
    continue
  }
  const withContext = Object.keys(call.context).some(encryptionContext)
  const analysis = withContext ? analyse(simulation, call.context) : response.result?.analysis
  const overall = withContext ? analysis.result : response.overallResult
  if (overall !== 'Allowed') {
    const identity = analysis?.identityAnalysis
    const resource = analysis?.resourceAnalysis
    const denied = [...(identity?.denyStatements ?? []), ...(resource?.denyStatements ?? [])]
    const near = [...(identity?.unmatchedStatements ?? []), ...(resource?.unmatchedStatements ?? [])].filter(
      (s) => s.actionMatch && s.resourceMatch && s.principalMatch !== 'NoMatch',
    )
    const why = denied.length
      ? `denied by ${denied.map((s) => `${s.policyId ?? 'the key policy'}#${s.explain.identifier}`).join(', ')}`
      : near.length
        ? `no statement allows it; nearest: ${near.map(nearMiss).join('; ')}`
        : 'no statement of its role allows this action on this resource'
    problems.push(`${what}\n    ${overall}: ${why}`)
    continue
  }
  allowed += 1
  const byIdentity = analysis?.identityAnalysis?.allowStatements ?? []
  const byKey = analysis?.resourceAnalysis?.allowStatements ?? []
  for (const grant of grantsOf(call.function, fn)) {
    const statementAllowed = grant.keyArn
      ? grant.keyArn === call.resource && byKey.some((s) => s.statement.index() === grant.index + 1)
      : byIdentity.some((s) => s.policyId === grant.policy && s.statement.index() === grant.index + 1)
    if (statementAllowed && glob(grant.action, call.action, true) && glob(grant.resource, call.resource, false)) {
      used.add(`${grant.fn}|${grant.policy}|${grant.index}|${grant.action}|${grant.resource}`)
    }
  }
}

let grants = 0
let unused = 0
let excused = 0
for (const [name, fn] of Object.entries(resolved.functions)) {
  const reasons = asList(fn.unused_ok)
  for (const grant of grantsOf(name, fn)) {
    grants += 1
    if (used.has(`${grant.fn}|${grant.policy}|${grant.index}|${grant.action}|${grant.resource}`)) continue
    unused += 1
    const written = reasons.find(
      (r) => r.Action === grant.action && (r.Resource === undefined || r.Resource === grant.resource) && r.Reason,
    )
    if (grant.reason || written) {
      excused += 1
      continue
    }
    problems.push(
      `${name}: ${label(grant.policy, grant.statement, grant.index)} grants ${grant.action} on ${grant.resource}, which no recorded call uses\n` +
        '    remove it, or write why the function needs it beside it (Metadata.IamUnusedGrants: Action, Reason)',
    )
  }
}

// The audit trail's events are written once and never changed: no function may hold a grant
// that could update, overwrite in bulk or delete one, whatever its conditions (a condition
// narrows a grant, but one that held would still allow it).
const IMMUTABLE_TABLES = ['AuditEventsTable']
const CHANGING_ACTIONS = ['dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem', 'dynamodb:PartiQLUpdate', 'dynamodb:PartiQLDelete', 'dynamodb:DeleteTable', 'dynamodb:UpdateTimeToLive', 'dynamodb:RestoreTableFromBackup', 'dynamodb:ImportTable']
let immutableChecks = 0
for (const table of IMMUTABLE_TABLES) {
  const tableArn = `arn:aws:dynamodb:${resolved.region ?? 'eu-west-1'}:${resolved.account}:table/${table}`
  for (const [name, fn] of Object.entries(resolved.functions)) {
    for (const action of CHANGING_ACTIONS) {
      immutableChecks += 1
      const grant = grantsOf(name, fn).find((g) => glob(g.action, action, true) && glob(g.resource, tableArn, false))
      if (grant) {
        problems.push(`${name}: ${label(grant.policy, grant.statement, grant.index)} grants ${action} on ${table}, whose audit events must never change`)
      }
    }
  }
}

for (const problem of problems) console.error(`make iam: ${problem}`)
const functions = new Set(calls.map((c) => c.function)).size
console.log(
  `make iam: ${calls.length} calls (${allowed} allowed) by ${functions} functions; ${grants} grants, ${unused} unused (${excused} with a written reason); ${immutableChecks} checks that no function may change an audit event; ${problems.length} problems`,
)
process.exit(problems.length ? 1 : 0)
