"""network: networks, subnets, subnet pools, address scopes, ports and their IP allocations, segments,
RBAC, quotas, tags

Revision ID: 0005
Revises: 0004
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('network_address_scope',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('ip_version', sa.Integer(), nullable=False),
    sa.Column('shared', sa.Boolean(), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('revision_number', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_network_address_scope'))
    )
    op.create_index(op.f('ix_network_address_scope_project_id'), 'network_address_scope', ['project_id'], unique=False)
    op.create_table('network_network',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('admin_state_up', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('shared', sa.Boolean(), nullable=False),
    sa.Column('external', sa.Boolean(), nullable=False),
    sa.Column('mtu', sa.Integer(), nullable=False),
    sa.Column('port_security_enabled', sa.Boolean(), nullable=False),
    sa.Column('dns_domain', sa.String(length=255), nullable=False),
    sa.Column('availability_zone_hints', sa.JSON(), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('revision_number', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_network_network'))
    )
    op.create_index(op.f('ix_network_network_external'), 'network_network', ['external'], unique=False)
    op.create_index(op.f('ix_network_network_name'), 'network_network', ['name'], unique=False)
    op.create_index(op.f('ix_network_network_project_id'), 'network_network', ['project_id'], unique=False)
    op.create_index(op.f('ix_network_network_shared'), 'network_network', ['shared'], unique=False)
    op.create_table('network_quota',
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('resource', sa.String(length=64), nullable=False),
    sa.Column('limit', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('project_id', 'resource', name=op.f('pk_network_quota'))
    )
    op.create_table('network_rbac',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('object_type', sa.String(length=32), nullable=False),
    sa.Column('object_id', sa.String(length=36), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('target_project', sa.String(length=255), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_network_rbac')),
    sa.UniqueConstraint('object_type', 'object_id', 'action', 'target_project', name=op.f('uq_network_rbac_object_type_object_id_action_target_project'))
    )
    op.create_index(op.f('ix_network_rbac_object_id'), 'network_rbac', ['object_id'], unique=False)
    op.create_index(op.f('ix_network_rbac_project_id'), 'network_rbac', ['project_id'], unique=False)
    op.create_index(op.f('ix_network_rbac_target_project'), 'network_rbac', ['target_project'], unique=False)
    op.create_table('network_subnetpool',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('ip_version', sa.Integer(), nullable=False),
    sa.Column('default_prefixlen', sa.Integer(), nullable=False),
    sa.Column('min_prefixlen', sa.Integer(), nullable=False),
    sa.Column('max_prefixlen', sa.Integer(), nullable=False),
    sa.Column('shared', sa.Boolean(), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('default_quota', sa.Integer(), nullable=True),
    sa.Column('address_scope_id', sa.String(length=36), nullable=True),
    sa.Column('prefixes', sa.JSON(), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('revision_number', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_network_subnetpool'))
    )
    op.create_index(op.f('ix_network_subnetpool_address_scope_id'), 'network_subnetpool', ['address_scope_id'], unique=False)
    op.create_index(op.f('ix_network_subnetpool_project_id'), 'network_subnetpool', ['project_id'], unique=False)
    op.create_table('network_tag',
    sa.Column('resource_id', sa.String(length=36), nullable=False),
    sa.Column('tag', sa.String(length=255), nullable=False),
    sa.Column('resource_type', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('resource_id', 'tag', name=op.f('pk_network_tag'))
    )
    op.create_index(op.f('ix_network_tag_tag'), 'network_tag', ['tag'], unique=False)
    op.create_table('network_port',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('network_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('mac_address', sa.String(length=32), nullable=False),
    sa.Column('admin_state_up', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('device_id', sa.String(length=255), nullable=False),
    sa.Column('device_owner', sa.String(length=255), nullable=False),
    sa.Column('host_id', sa.String(length=255), nullable=False),
    sa.Column('vnic_type', sa.String(length=64), nullable=False),
    sa.Column('profile', sa.JSON(), nullable=False),
    sa.Column('vif_type', sa.String(length=64), nullable=False),
    sa.Column('vif_details', sa.JSON(), nullable=False),
    sa.Column('port_security_enabled', sa.Boolean(), nullable=False),
    sa.Column('allowed_address_pairs', sa.JSON(), nullable=False),
    sa.Column('extra_dhcp_opts', sa.JSON(), nullable=False),
    sa.Column('dns_name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('revision_number', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['network_id'], ['network_network.id'], name=op.f('fk_network_port_network_id_network_network'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_network_port')),
    sa.UniqueConstraint('network_id', 'mac_address', name=op.f('uq_network_port_network_id_mac_address'))
    )
    op.create_index(op.f('ix_network_port_device_id'), 'network_port', ['device_id'], unique=False)
    op.create_index(op.f('ix_network_port_device_owner'), 'network_port', ['device_owner'], unique=False)
    op.create_index(op.f('ix_network_port_host_id'), 'network_port', ['host_id'], unique=False)
    op.create_index(op.f('ix_network_port_mac_address'), 'network_port', ['mac_address'], unique=False)
    op.create_index(op.f('ix_network_port_network_id'), 'network_port', ['network_id'], unique=False)
    op.create_index(op.f('ix_network_port_project_id'), 'network_port', ['project_id'], unique=False)
    op.create_table('network_segment',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('network_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('network_type', sa.String(length=32), nullable=False),
    sa.Column('physical_network', sa.String(length=64), nullable=True),
    sa.Column('segmentation_id', sa.Integer(), nullable=True),
    sa.Column('segment_index', sa.Integer(), nullable=False),
    sa.Column('physnet_key', sa.String(length=64), nullable=False),
    sa.Column('seg_key', sa.Integer(), nullable=True),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('revision_number', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['network_id'], ['network_network.id'], name=op.f('fk_network_segment_network_id_network_network'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_network_segment')),
    sa.UniqueConstraint('network_type', 'physnet_key', 'seg_key', name=op.f('uq_network_segment_network_type_physnet_key_seg_key'))
    )
    op.create_index(op.f('ix_network_segment_network_id'), 'network_segment', ['network_id'], unique=False)
    op.create_table('network_subnet',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('network_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('ip_version', sa.Integer(), nullable=False),
    sa.Column('cidr', sa.String(length=64), nullable=False),
    sa.Column('gateway_ip', sa.String(length=64), nullable=True),
    sa.Column('enable_dhcp', sa.Boolean(), nullable=False),
    sa.Column('ipv6_ra_mode', sa.String(length=32), nullable=True),
    sa.Column('ipv6_address_mode', sa.String(length=32), nullable=True),
    sa.Column('subnetpool_id', sa.String(length=36), nullable=True),
    sa.Column('segment_id', sa.String(length=36), nullable=True),
    sa.Column('dns_nameservers', sa.JSON(), nullable=False),
    sa.Column('host_routes', sa.JSON(), nullable=False),
    sa.Column('allocation_pools', sa.JSON(), nullable=False),
    sa.Column('service_types', sa.JSON(), nullable=False),
    sa.Column('dns_publish_fixed_ip', sa.Boolean(), nullable=False),
    sa.Column('ipam_cursor', sa.String(length=32), nullable=True),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('revision_number', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['network_id'], ['network_network.id'], name=op.f('fk_network_subnet_network_id_network_network'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_network_subnet'))
    )
    op.create_index(op.f('ix_network_subnet_cidr'), 'network_subnet', ['cidr'], unique=False)
    op.create_index(op.f('ix_network_subnet_network_id'), 'network_subnet', ['network_id'], unique=False)
    op.create_index(op.f('ix_network_subnet_project_id'), 'network_subnet', ['project_id'], unique=False)
    op.create_index(op.f('ix_network_subnet_subnetpool_id'), 'network_subnet', ['subnetpool_id'], unique=False)
    op.create_table('network_ip_allocation',
    sa.Column('subnet_id', sa.String(length=36), nullable=False),
    sa.Column('ip_key', sa.String(length=32), nullable=False),
    sa.Column('ip_address', sa.String(length=64), nullable=False),
    sa.Column('port_id', sa.String(length=36), nullable=False),
    sa.Column('network_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['port_id'], ['network_port.id'], name=op.f('fk_network_ip_allocation_port_id_network_port'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['subnet_id'], ['network_subnet.id'], name=op.f('fk_network_ip_allocation_subnet_id_network_subnet'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('subnet_id', 'ip_key', name=op.f('pk_network_ip_allocation'))
    )
    op.create_index(op.f('ix_network_ip_allocation_ip_address'), 'network_ip_allocation', ['ip_address'], unique=False)
    op.create_index(op.f('ix_network_ip_allocation_network_id'), 'network_ip_allocation', ['network_id'], unique=False)
    op.create_index(op.f('ix_network_ip_allocation_port_id'), 'network_ip_allocation', ['port_id'], unique=False)


def downgrade() -> None:
    op.drop_table('network_ip_allocation')
    op.drop_table('network_subnet')
    op.drop_table('network_segment')
    op.drop_table('network_port')
    op.drop_table('network_tag')
    op.drop_table('network_subnetpool')
    op.drop_table('network_rbac')
    op.drop_table('network_quota')
    op.drop_table('network_network')
    op.drop_table('network_address_scope')
