#!/usr/bin/env python3
"""Refresh the schemas vendored here (see README.md beside this file for sources and versions).

  python3 test/infra/schemas/vendor.py \
    --k8s-wheel kubernetes_validate-1.37.0-py3-none-any.whl --k8s-version v1.33.0 \
    --keda-crds <kedacore/keda at v2.20.2>/config/crd/bases \
    --keda-temporal-scaler <kedacore/keda at v2.20.2>/pkg/scalers/temporal_scaler.go \
    --compose-schema <compose-spec/compose-spec>/schema/compose-spec.json

Kubernetes: the strict schemas (unknown fields refused, as `kubectl --validate=strict`) of the kinds infra/k8s
uses, with only the shared definitions they reach. KEDA: the CRDs' openAPIV3Schema as published (the test makes
them strict), and the temporal scaler's parameter names read from its `keda:"name=..."` struct tags.
"""
import argparse, json, re, zipfile
from pathlib import Path

import yaml  # PyYAML

HERE = Path(__file__).parent
K8S_KINDS = ['deployment-apps-v1', 'configmap-v1', 'secret-v1', 'serviceaccount-v1', 'namespace-v1', 'persistentvolumeclaim-v1']
KEDA_CRDS = ['keda.sh_scaledobjects.yaml', 'keda.sh_triggerauthentications.yaml']


def refs(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == '$ref' and isinstance(v, str):
                yield v.split('#/$defs/')[-1]
            else:
                yield from refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from refs(v)


def vendor_k8s(wheel, version):
    prefix = f'kubernetes_validate/kubernetes-json-schema/{version}-local-strict/'
    with zipfile.ZipFile(wheel) as z:
        definitions = json.loads(z.read(prefix + '_definitions.json'))
        kinds = {k: json.loads(z.read(f'{prefix}{k}.json')) for k in K8S_KINDS}
    keep, todo = set(), [r for s in kinds.values() for r in refs(s)]
    while todo:
        name = todo.pop()
        if name not in keep:
            keep.add(name)
            todo.extend(refs(definitions['$defs'][name]))
    definitions['$defs'] = {k: definitions['$defs'][k] for k in sorted(keep)}
    out = {'source': f'PyPI kubernetes-validate ({Path(wheel).name}), {prefix}', 'definitions': definitions, 'kinds': kinds}
    (HERE / f'kubernetes-{version}-strict.json').write_text(json.dumps(out, indent=1) + '\n')


def vendor_keda(crds, scaler_go):
    out = {'source': 'kedacore/keda v2.20.2 config/crd/bases', 'crds': {}}
    for name in KEDA_CRDS:
        crd = yaml.safe_load((Path(crds) / name).read_text())
        for v in crd['spec']['versions']:
            out['crds'][f"{crd['spec']['group']}/{v['name']}/{crd['spec']['names']['kind']}"] = v['schema']['openAPIV3Schema']
    tags = re.findall(r'keda:"name=([A-Za-z]+),\s*order=([a-zA-Z;]+)', Path(scaler_go).read_text())
    out['temporalScaler'] = {
        'source': 'kedacore/keda v2.20.2 pkg/scalers/temporal_scaler.go (temporalMetadata struct tags)',
        'triggerMetadata': sorted(n for n, order in tags if 'triggerMetadata' in order),
        'fromEnv': sorted(n for n, order in tags if 'resolvedEnv' in order),
        'authParams': sorted(n for n, order in tags if 'authParams' in order),
    }
    (HERE / 'keda-v2.20.2.json').write_text(json.dumps(out, indent=1) + '\n')


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--k8s-wheel', required=True)
    p.add_argument('--k8s-version', default='v1.33.0')
    p.add_argument('--keda-crds', required=True)
    p.add_argument('--keda-temporal-scaler', required=True)
    p.add_argument('--compose-schema', required=True)
    a = p.parse_args()
    vendor_k8s(a.k8s_wheel, a.k8s_version)
    vendor_keda(a.keda_crds, a.keda_temporal_scaler)
    (HERE / 'compose-spec.json').write_text(Path(a.compose_schema).read_text())


if __name__ == '__main__':
    main()
