"""network_l3: routers, floating IPs, port forwardings, security groups, QoS, trunks

Revision ID: 0006
Revises: 0005
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('network_qos_policy',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('shared', sa.Boolean(), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('revision_number', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_network_qos_policy'))
    )
    with op.batch_alter_table('network_qos_policy', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_qos_policy_project_id'), ['project_id'], unique=False)

    op.create_table('network_security_group',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('stateful', sa.Boolean(), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('revision_number', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_network_security_group'))
    )
    with op.batch_alter_table('network_security_group', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_security_group_project_id'), ['project_id'], unique=False)

    op.create_table('network_default_security_group',
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('security_group_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['security_group_id'], ['network_security_group.id'], name=op.f('fk_network_default_security_group_security_group_id_network_security_group'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('project_id', name=op.f('pk_network_default_security_group')),
    sa.UniqueConstraint('security_group_id', name=op.f('uq_network_default_security_group_security_group_id'))
    )
    op.create_table('network_network_qos',
    sa.Column('network_id', sa.String(length=36), nullable=False),
    sa.Column('policy_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['network_id'], ['network_network.id'], name=op.f('fk_network_network_qos_network_id_network_network'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['policy_id'], ['network_qos_policy.id'], name=op.f('fk_network_network_qos_policy_id_network_qos_policy')),
    sa.PrimaryKeyConstraint('network_id', name=op.f('pk_network_network_qos'))
    )
    with op.batch_alter_table('network_network_qos', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_network_qos_policy_id'), ['policy_id'], unique=False)

    op.create_table('network_qos_rule',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('policy_id', sa.String(length=36), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('direction', sa.String(length=16), nullable=False),
    sa.Column('max_kbps', sa.BigInteger(), nullable=True),
    sa.Column('max_burst_kbps', sa.BigInteger(), nullable=True),
    sa.Column('dscp_mark', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['policy_id'], ['network_qos_policy.id'], name=op.f('fk_network_qos_rule_policy_id_network_qos_policy'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_network_qos_rule')),
    sa.UniqueConstraint('policy_id', 'type', 'direction', name=op.f('uq_network_qos_rule_policy_id_type_direction'))
    )
    with op.batch_alter_table('network_qos_rule', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_qos_rule_policy_id'), ['policy_id'], unique=False)

    op.create_table('network_security_group_rule',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('security_group_id', sa.String(length=36), nullable=False),
    sa.Column('remote_group_id', sa.String(length=36), nullable=True),
    sa.Column('direction', sa.String(length=16), nullable=False),
    sa.Column('ethertype', sa.String(length=40), nullable=False),
    sa.Column('protocol', sa.String(length=40), nullable=True),
    sa.Column('port_range_min', sa.Integer(), nullable=True),
    sa.Column('port_range_max', sa.Integer(), nullable=True),
    sa.Column('remote_ip_prefix', sa.String(length=255), nullable=True),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('revision_number', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['remote_group_id'], ['network_security_group.id'], name=op.f('fk_network_security_group_rule_remote_group_id_network_security_group'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['security_group_id'], ['network_security_group.id'], name=op.f('fk_network_security_group_rule_security_group_id_network_security_group'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_network_security_group_rule'))
    )
    with op.batch_alter_table('network_security_group_rule', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_security_group_rule_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_network_security_group_rule_remote_group_id'), ['remote_group_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_network_security_group_rule_security_group_id'), ['security_group_id'], unique=False)

    op.create_table('network_port_qos',
    sa.Column('port_id', sa.String(length=36), nullable=False),
    sa.Column('policy_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['policy_id'], ['network_qos_policy.id'], name=op.f('fk_network_port_qos_policy_id_network_qos_policy')),
    sa.ForeignKeyConstraint(['port_id'], ['network_port.id'], name=op.f('fk_network_port_qos_port_id_network_port'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('port_id', name=op.f('pk_network_port_qos'))
    )
    with op.batch_alter_table('network_port_qos', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_port_qos_policy_id'), ['policy_id'], unique=False)

    op.create_table('network_port_security_group',
    sa.Column('port_id', sa.String(length=36), nullable=False),
    sa.Column('security_group_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['port_id'], ['network_port.id'], name=op.f('fk_network_port_security_group_port_id_network_port'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['security_group_id'], ['network_security_group.id'], name=op.f('fk_network_port_security_group_security_group_id_network_security_group')),
    sa.PrimaryKeyConstraint('port_id', 'security_group_id', name=op.f('pk_network_port_security_group'))
    )
    with op.batch_alter_table('network_port_security_group', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_port_security_group_security_group_id'), ['security_group_id'], unique=False)

    op.create_table('network_router',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('admin_state_up', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('gw_port_id', sa.String(length=36), nullable=True),
    sa.Column('enable_snat', sa.Boolean(), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('revision_number', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['gw_port_id'], ['network_port.id'], name=op.f('fk_network_router_gw_port_id_network_port')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_network_router'))
    )
    with op.batch_alter_table('network_router', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_router_project_id'), ['project_id'], unique=False)

    op.create_table('network_trunk',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('admin_state_up', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('port_id', sa.String(length=36), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('revision_number', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['port_id'], ['network_port.id'], name=op.f('fk_network_trunk_port_id_network_port')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_network_trunk')),
    sa.UniqueConstraint('port_id', name=op.f('uq_network_trunk_port_id'))
    )
    with op.batch_alter_table('network_trunk', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_trunk_project_id'), ['project_id'], unique=False)

    op.create_table('network_floating_ip',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('floating_network_id', sa.String(length=36), nullable=False),
    sa.Column('floating_port_id', sa.String(length=36), nullable=False),
    sa.Column('floating_ip_address', sa.String(length=64), nullable=False),
    sa.Column('fixed_port_id', sa.String(length=36), nullable=True),
    sa.Column('fixed_ip_address', sa.String(length=64), nullable=True),
    sa.Column('router_id', sa.String(length=36), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('revision_number', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['fixed_port_id'], ['network_port.id'], name=op.f('fk_network_floating_ip_fixed_port_id_network_port'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['floating_network_id'], ['network_network.id'], name=op.f('fk_network_floating_ip_floating_network_id_network_network')),
    sa.ForeignKeyConstraint(['floating_port_id'], ['network_port.id'], name=op.f('fk_network_floating_ip_floating_port_id_network_port')),
    sa.ForeignKeyConstraint(['router_id'], ['network_router.id'], name=op.f('fk_network_floating_ip_router_id_network_router')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_network_floating_ip')),
    sa.UniqueConstraint('floating_port_id', name=op.f('uq_network_floating_ip_floating_port_id'))
    )
    with op.batch_alter_table('network_floating_ip', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_floating_ip_fixed_port_id'), ['fixed_port_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_network_floating_ip_floating_network_id'), ['floating_network_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_network_floating_ip_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_network_floating_ip_router_id'), ['router_id'], unique=False)

    op.create_table('network_router_port',
    sa.Column('port_id', sa.String(length=36), nullable=False),
    sa.Column('router_id', sa.String(length=36), nullable=False),
    sa.Column('port_type', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['port_id'], ['network_port.id'], name=op.f('fk_network_router_port_port_id_network_port'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['router_id'], ['network_router.id'], name=op.f('fk_network_router_port_router_id_network_router'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('port_id', name=op.f('pk_network_router_port'))
    )
    with op.batch_alter_table('network_router_port', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_router_port_router_id'), ['router_id'], unique=False)

    op.create_table('network_router_route',
    sa.Column('router_id', sa.String(length=36), nullable=False),
    sa.Column('destination', sa.String(length=64), nullable=False),
    sa.Column('nexthop', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['router_id'], ['network_router.id'], name=op.f('fk_network_router_route_router_id_network_router'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('router_id', 'destination', 'nexthop', name=op.f('pk_network_router_route'))
    )
    op.create_table('network_subport',
    sa.Column('port_id', sa.String(length=36), nullable=False),
    sa.Column('trunk_id', sa.String(length=36), nullable=False),
    sa.Column('segmentation_type', sa.String(length=32), nullable=False),
    sa.Column('segmentation_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['port_id'], ['network_port.id'], name=op.f('fk_network_subport_port_id_network_port')),
    sa.ForeignKeyConstraint(['trunk_id'], ['network_trunk.id'], name=op.f('fk_network_subport_trunk_id_network_trunk'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('port_id', name=op.f('pk_network_subport')),
    sa.UniqueConstraint('trunk_id', 'segmentation_type', 'segmentation_id', name=op.f('uq_network_subport_trunk_id_segmentation_type_segmentation_id'))
    )
    with op.batch_alter_table('network_subport', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_subport_trunk_id'), ['trunk_id'], unique=False)

    op.create_table('network_port_forwarding',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('floatingip_id', sa.String(length=36), nullable=False),
    sa.Column('internal_port_id', sa.String(length=36), nullable=False),
    sa.Column('internal_ip_address', sa.String(length=64), nullable=False),
    sa.Column('internal_port', sa.Integer(), nullable=False),
    sa.Column('external_port', sa.Integer(), nullable=False),
    sa.Column('protocol', sa.String(length=16), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('revision_number', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['floatingip_id'], ['network_floating_ip.id'], name=op.f('fk_network_port_forwarding_floatingip_id_network_floating_ip'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['internal_port_id'], ['network_port.id'], name=op.f('fk_network_port_forwarding_internal_port_id_network_port'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_network_port_forwarding')),
    sa.UniqueConstraint('floatingip_id', 'external_port', 'protocol', name=op.f('uq_network_port_forwarding_floatingip_id_external_port_protocol')),
    sa.UniqueConstraint('internal_port_id', 'internal_ip_address', 'internal_port', 'protocol', name=op.f('uq_network_port_forwarding_internal_port_id_internal_ip_address_internal_port_protocol'))
    )
    with op.batch_alter_table('network_port_forwarding', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_port_forwarding_floatingip_id'), ['floatingip_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_network_port_forwarding_internal_port_id'), ['internal_port_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('network_port_forwarding', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_network_port_forwarding_internal_port_id'))
        batch_op.drop_index(batch_op.f('ix_network_port_forwarding_floatingip_id'))

    op.drop_table('network_port_forwarding')
    with op.batch_alter_table('network_subport', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_network_subport_trunk_id'))

    op.drop_table('network_subport')
    op.drop_table('network_router_route')
    with op.batch_alter_table('network_router_port', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_network_router_port_router_id'))

    op.drop_table('network_router_port')
    with op.batch_alter_table('network_floating_ip', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_network_floating_ip_router_id'))
        batch_op.drop_index(batch_op.f('ix_network_floating_ip_project_id'))
        batch_op.drop_index(batch_op.f('ix_network_floating_ip_floating_network_id'))
        batch_op.drop_index(batch_op.f('ix_network_floating_ip_fixed_port_id'))

    op.drop_table('network_floating_ip')
    with op.batch_alter_table('network_trunk', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_network_trunk_project_id'))

    op.drop_table('network_trunk')
    with op.batch_alter_table('network_router', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_network_router_project_id'))

    op.drop_table('network_router')
    with op.batch_alter_table('network_port_security_group', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_network_port_security_group_security_group_id'))

    op.drop_table('network_port_security_group')
    with op.batch_alter_table('network_port_qos', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_network_port_qos_policy_id'))

    op.drop_table('network_port_qos')
    with op.batch_alter_table('network_security_group_rule', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_network_security_group_rule_security_group_id'))
        batch_op.drop_index(batch_op.f('ix_network_security_group_rule_remote_group_id'))
        batch_op.drop_index(batch_op.f('ix_network_security_group_rule_project_id'))

    op.drop_table('network_security_group_rule')
    with op.batch_alter_table('network_qos_rule', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_network_qos_rule_policy_id'))

    op.drop_table('network_qos_rule')
    with op.batch_alter_table('network_network_qos', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_network_network_qos_policy_id'))

    op.drop_table('network_network_qos')
    op.drop_table('network_default_security_group')
    with op.batch_alter_table('network_security_group', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_network_security_group_project_id'))

    op.drop_table('network_security_group')
    with op.batch_alter_table('network_qos_policy', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_network_qos_policy_project_id'))

    op.drop_table('network_qos_policy')
