#!/usr/bin/env python3
"""Write a tempest.conf for a live mCloud.

Run with the Tempest venv's python (it needs PyYAML, which Tempest pulls in).
Called by tools/tempest.sh; usable on its own:

    mkconf.py --clouds DIR/clouds.yaml --out etc/tempest.conf \
        --identity-features "trust=true,access_rules=false,..." \
        [--services identity|catalog|nova,neutron,...] [--extra FILE]

It authenticates once with the admin cloud of clouds.yaml (POST /v3/auth/tokens)
to learn the real user/project/domain names and ids and the service catalog,
so the generated [auth] section always matches what Tempest will send.
"""

import argparse
import configparser
import json
import os
import sys
import urllib.error
import urllib.request

import yaml

# Catalog service type -> tempest [service_available] option.
# Several types may map to one option (volume has had three names).
CATALOG_TO_SERVICE = {
    'compute': 'nova',
    'network': 'neutron',
    'image': 'glance',
    'object-store': 'swift',
    'block-storage': 'cinder',
    'volumev3': 'cinder',
    'volume': 'cinder',
    'orchestration': 'heat',      # heat-tempest-plugin option
    'dns': 'designate',           # designate-tempest-plugin option
}
# Every [service_available] option we write (all false unless enabled).
ALL_SERVICES = ['nova', 'neutron', 'glance', 'swift', 'cinder', 'horizon',
                'heat', 'designate', 'barbican', 'octavia', 'manila',
                'ironic', 'aodh', 'gnocchi', 'placement']
VOLUME_TYPES = ('block-storage', 'volumev3', 'volume')


def die(msg, code=2):
    print('mkconf: error: %s' % msg, file=sys.stderr)
    sys.exit(code)


def load_cloud(path, name):
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    clouds = data.get('clouds') or {}
    if name not in clouds:
        die('cloud %r not in %s (has: %s)' % (name, path, ', '.join(clouds)))
    cloud = dict(clouds[name])
    # secure.yaml beside clouds.yaml may hold the passwords
    secure = os.path.join(os.path.dirname(path), 'secure.yaml')
    if os.path.exists(secure):
        with open(secure) as f:
            sec = ((yaml.safe_load(f) or {}).get('clouds') or {}).get(name)
        if sec:
            auth = dict(cloud.get('auth') or {})
            auth.update(sec.get('auth') or {})
            cloud.update({k: v for k, v in sec.items() if k != 'auth'})
            cloud['auth'] = auth
    if 'auth' not in cloud or 'auth_url' not in cloud['auth']:
        die('cloud %r has no auth.auth_url' % name)
    return cloud


def v3_url(auth_url):
    u = auth_url.rstrip('/')
    return u if u.endswith('/v3') else u + '/v3'


def token_request(auth):
    user = {'password': auth['password']}
    if auth.get('user_id'):
        user['id'] = auth['user_id']
    else:
        user['name'] = auth['username']
        if auth.get('user_domain_id'):
            user['domain'] = {'id': auth['user_domain_id']}
        else:
            user['domain'] = {'name': auth.get('user_domain_name', 'Default')}
    body = {'auth': {'identity': {'methods': ['password'],
                                  'password': {'user': user}}}}
    if auth.get('project_id'):
        body['auth']['scope'] = {'project': {'id': auth['project_id']}}
    elif auth.get('project_name'):
        proj = {'name': auth['project_name']}
        if auth.get('project_domain_id'):
            proj['domain'] = {'id': auth['project_domain_id']}
        else:
            proj['domain'] = {'name': auth.get('project_domain_name',
                                               'Default')}
        body['auth']['scope'] = {'project': proj}
    return body


def get_token(auth, timeout=30):
    url = v3_url(auth['auth_url']) + '/auth/tokens'
    req = urllib.request.Request(
        url, data=json.dumps(token_request(auth)).encode(),
        headers={'Content-Type': 'application/json',
                 'Accept': 'application/json'}, method='POST')
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())['token']
    except urllib.error.HTTPError as e:
        die('POST %s -> %s %s' % (url, e.code, e.read()[:300]))
    except (urllib.error.URLError, OSError) as e:
        die('POST %s failed: %s' % (url, e))


def parse_kv(text):
    out = {}
    for item in filter(None, (x.strip() for x in text.replace('\n', ';')
                              .split(';'))):
        k, _, v = item.partition('=')
        out[k.strip()] = v.strip()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--clouds', required=True, help='path of clouds.yaml')
    ap.add_argument('--cloud', default='mcloud', help='admin cloud name')
    ap.add_argument('--out', required=True)
    ap.add_argument('--workspace', help='tempest workspace (log/lock dirs)')
    ap.add_argument('--identity-features', default='',
                    help='"opt=value;opt=value" for [identity-feature-enabled]')
    ap.add_argument('--services', default='identity',
                    help='"identity" (only identity), "catalog" (every '
                         'service in the token catalog) or a comma list of '
                         'tempest service names (nova,neutron,...)')
    ap.add_argument('--extra', action='append', default=[],
                    help='ini file(s) whose options override the result')
    ap.add_argument('--offline', action='store_true',
                    help='do not contact the cloud; assume Default domain')
    ap.add_argument('--print-catalog', action='store_true')
    a = ap.parse_args()

    cloud = load_cloud(a.clouds, a.cloud)
    auth = cloud['auth']
    region = cloud.get('region_name') or 'RegionOne'

    if a.offline:
        token = {'user': {'name': auth.get('username'),
                          'domain': {'id': auth.get('user_domain_id',
                                                    'default'),
                                     'name': auth.get('user_domain_name',
                                                      'Default')}},
                 'project': {'name': auth.get('project_name'),
                             'domain': {'id': auth.get('project_domain_id',
                                                       'default'),
                                        'name': auth.get(
                                            'project_domain_name',
                                            'Default')}},
                 'catalog': []}
    else:
        token = get_token(auth)

    catalog_types = sorted({s.get('type') for s in token.get('catalog', [])})
    if a.print_catalog:
        print('catalog types: %s' % ' '.join(catalog_types), file=sys.stderr)

    # [service_available]
    enabled = set()
    if a.services == 'catalog':
        enabled = {CATALOG_TO_SERVICE[t] for t in catalog_types
                   if t in CATALOG_TO_SERVICE}
    elif a.services not in ('', 'identity'):
        enabled = {s.strip() for s in a.services.split(',') if s.strip()}
        enabled.discard('identity')
        unknown = enabled - set(ALL_SERVICES)
        if unknown:
            die('unknown service(s): %s' % ', '.join(sorted(unknown)))

    user, project = token['user'], token.get('project') or {}
    pdom = project.get('domain') or user['domain']

    c = configparser.ConfigParser(interpolation=None)
    c.optionxform = str
    c['DEFAULT'] = {}
    if a.workspace:
        c['DEFAULT']['log_dir'] = os.path.join(a.workspace, 'logs')
        c['DEFAULT']['log_file'] = 'tempest.log'
        c['oslo_concurrency'] = {
            'lock_path': os.path.join(a.workspace, 'tempest_lock')}
    c['auth'] = {
        'admin_username': user['name'],
        'admin_password': auth['password'],
        'admin_project_name': project.get('name') or
        auth.get('project_name', 'admin'),
        'admin_user_domain_name': user['domain']['name'],
        'admin_project_domain_name': pdom['name'],
        'admin_domain_name': pdom['name'],
        'default_credentials_domain_name': pdom['name'],
        'use_dynamic_credentials': 'true',
        'create_isolated_networks': str('neutron' in enabled).lower(),
    }
    c['identity'] = {
        'uri_v3': v3_url(auth['auth_url']),
        'auth_version': 'v3',
        'region': region,
        'v3_endpoint_type': cloud.get('interface', 'public'),
        'catalog_type': 'identity',
        'admin_role': 'admin',
        'default_domain_id': pdom.get('id') or 'default',
        'disable_ssl_certificate_validation':
            str(not cloud.get('verify', True)).lower(),
    }
    feats = parse_kv(a.identity_features)
    c['identity-feature-enabled'] = feats
    c['service_available'] = {s: str(s in enabled).lower()
                              for s in ALL_SERVICES}
    # No SSH into guests unless someone configures it explicitly.
    c['validation'] = {'run_validation': 'false'}
    vol = [t for t in VOLUME_TYPES if t in catalog_types]
    if vol:
        c['volume'] = {'catalog_type': vol[0]}
    for tname, section in (('compute', 'compute'), ('image', 'image'),
                           ('network', 'network'),
                           ('object-store', 'object-storage'),
                           ('placement', 'placement')):
        if tname in catalog_types:
            c.setdefault(section, {})
            c[section]['region'] = region

    for extra in a.extra:
        x = configparser.ConfigParser(interpolation=None)
        x.optionxform = str
        if not x.read(extra):
            die('cannot read %s' % extra)
        for k, v in x.defaults().items():
            c['DEFAULT'][k] = v
        for sec in x.sections():
            if not c.has_section(sec):
                c.add_section(sec)
            for k in x[sec]:
                if k not in x.defaults():
                    c[sec][k] = x[sec][k]

    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, 'w') as f:
        f.write('# Generated by tools/tempest/mkconf.py from %s (cloud %s)\n'
                % (a.clouds, a.cloud))
        c.write(f)
    on = sorted(['identity'] + list(enabled))
    print('mkconf: wrote %s (services: %s; catalog: %s)'
          % (a.out, ','.join(on), ','.join(catalog_types) or '-'),
          file=sys.stderr)


if __name__ == '__main__':
    main()
