"""compute_resources: flavors, keypairs, server groups, aggregates, quotas

Revision ID: 0008
Revises: 0007
"""

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('compute_aggregate',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_compute_aggregate')),
    sa.UniqueConstraint('name', name=op.f('uq_compute_aggregate_name')),
    sa.UniqueConstraint('uuid', name=op.f('uq_compute_aggregate_uuid'))
    )
    op.create_table('compute_flavor',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('flavorid', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('memory_mb', sa.Integer(), nullable=False),
    sa.Column('vcpus', sa.Integer(), nullable=False),
    sa.Column('root_gb', sa.Integer(), nullable=False),
    sa.Column('ephemeral_gb', sa.Integer(), nullable=False),
    sa.Column('swap', sa.Integer(), nullable=False),
    sa.Column('rxtx_factor', sa.Float(), nullable=False),
    sa.Column('vcpu_weight', sa.Integer(), nullable=True),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('is_public', sa.Boolean(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_compute_flavor')),
    sa.UniqueConstraint('flavorid', name=op.f('uq_compute_flavor_flavorid')),
    sa.UniqueConstraint('name', name=op.f('uq_compute_flavor_name'))
    )
    op.create_table('compute_keypair',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('fingerprint', sa.String(length=255), nullable=False),
    sa.Column('public_key', sa.Text(), nullable=False),
    sa.Column('type', sa.String(length=8), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_compute_keypair')),
    sa.UniqueConstraint('user_id', 'name', name=op.f('uq_compute_keypair_user_id_name'))
    )
    op.create_table('compute_quota',
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('resource', sa.String(length=255), nullable=False),
    sa.Column('hard_limit', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('project_id', 'resource', name=op.f('pk_compute_quota'))
    )
    op.create_table('compute_quota_class',
    sa.Column('class_name', sa.String(length=255), nullable=False),
    sa.Column('resource', sa.String(length=255), nullable=False),
    sa.Column('hard_limit', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('class_name', 'resource', name=op.f('pk_compute_quota_class'))
    )
    op.create_table('compute_server_group',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('user_id', sa.String(length=255), nullable=False),
    sa.Column('policy', sa.String(length=32), nullable=False),
    sa.Column('rules', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_compute_server_group')),
    sa.UniqueConstraint('uuid', name=op.f('uq_compute_server_group_uuid'))
    )
    with op.batch_alter_table('compute_server_group', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_compute_server_group_project_id'), ['project_id'], unique=False)

    op.create_table('compute_aggregate_host',
    sa.Column('aggregate_id', sa.Integer(), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['aggregate_id'], ['compute_aggregate.id'], name=op.f('fk_compute_aggregate_host_aggregate_id_compute_aggregate'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('aggregate_id', 'host', name=op.f('pk_compute_aggregate_host'))
    )
    with op.batch_alter_table('compute_aggregate_host', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_compute_aggregate_host_host'), ['host'], unique=False)

    op.create_table('compute_aggregate_metadata',
    sa.Column('aggregate_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('value', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['aggregate_id'], ['compute_aggregate.id'], name=op.f('fk_compute_aggregate_metadata_aggregate_id_compute_aggregate'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('aggregate_id', 'key', name=op.f('pk_compute_aggregate_metadata'))
    )
    op.create_table('compute_flavor_extra_spec',
    sa.Column('flavor_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('value', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['flavor_id'], ['compute_flavor.id'], name=op.f('fk_compute_flavor_extra_spec_flavor_id_compute_flavor'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('flavor_id', 'key', name=op.f('pk_compute_flavor_extra_spec'))
    )
    op.create_table('compute_flavor_project',
    sa.Column('flavor_id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['flavor_id'], ['compute_flavor.id'], name=op.f('fk_compute_flavor_project_flavor_id_compute_flavor'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('flavor_id', 'project_id', name=op.f('pk_compute_flavor_project'))
    )
    with op.batch_alter_table('compute_flavor_project', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_compute_flavor_project_project_id'), ['project_id'], unique=False)

    op.create_table('compute_server_group_member',
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('instance_uuid', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['compute_server_group.id'], name=op.f('fk_compute_server_group_member_group_id_compute_server_group'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('group_id', 'instance_uuid', name=op.f('pk_compute_server_group_member'))
    )
    with op.batch_alter_table('compute_server_group_member', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_compute_server_group_member_instance_uuid'), ['instance_uuid'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('compute_server_group_member', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_compute_server_group_member_instance_uuid'))

    op.drop_table('compute_server_group_member')
    with op.batch_alter_table('compute_flavor_project', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_compute_flavor_project_project_id'))

    op.drop_table('compute_flavor_project')
    op.drop_table('compute_flavor_extra_spec')
    op.drop_table('compute_aggregate_metadata')
    with op.batch_alter_table('compute_aggregate_host', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_compute_aggregate_host_host'))

    op.drop_table('compute_aggregate_host')
    with op.batch_alter_table('compute_server_group', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_compute_server_group_project_id'))

    op.drop_table('compute_server_group')
    op.drop_table('compute_quota_class')
    op.drop_table('compute_quota')
    op.drop_table('compute_keypair')
    op.drop_table('compute_flavor')
    op.drop_table('compute_aggregate')
