"""volume: volumes, snapshots, attachments (VOLUMES)

Revision ID: 0010
Revises: 0009
"""

from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('volume_attachment',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('volume_id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('instance_uuid', sa.String(length=36), nullable=True),
    sa.Column('attached_host', sa.String(length=255), nullable=True),
    sa.Column('mountpoint', sa.String(length=255), nullable=True),
    sa.Column('attach_status', sa.String(length=255), nullable=False),
    sa.Column('attach_mode', sa.String(length=36), nullable=False),
    sa.Column('connector', sa.JSON(), nullable=True),
    sa.Column('connection_info', sa.JSON(), nullable=True),
    sa.Column('attach_time', sa.DateTime(), nullable=True),
    sa.Column('detach_time', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_volume_attachment'))
    )
    op.create_index(op.f('ix_volume_attachment_deleted'), 'volume_attachment', ['deleted'], unique=False)
    op.create_index(op.f('ix_volume_attachment_instance_uuid'), 'volume_attachment', ['instance_uuid'], unique=False)
    op.create_index(op.f('ix_volume_attachment_volume_id'), 'volume_attachment', ['volume_id'], unique=False)
    op.create_table('volume_snapshot',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('volume_id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('user_id', sa.String(length=255), nullable=True),
    sa.Column('volume_size', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=255), nullable=False),
    sa.Column('progress', sa.String(length=255), nullable=False),
    sa.Column('display_name', sa.String(length=255), nullable=True),
    sa.Column('display_description', sa.String(length=255), nullable=True),
    sa.Column('volume_type_id', sa.String(length=36), nullable=True),
    sa.Column('group_snapshot_id', sa.String(length=36), nullable=True),
    sa.Column('provider_location', sa.String(length=255), nullable=True),
    sa.Column('provider_id', sa.String(length=255), nullable=True),
    sa.Column('use_quota', sa.Boolean(), nullable=False),
    sa.Column('metadata', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_volume_snapshot'))
    )
    op.create_index(op.f('ix_volume_snapshot_deleted'), 'volume_snapshot', ['deleted'], unique=False)
    op.create_index(op.f('ix_volume_snapshot_project_id'), 'volume_snapshot', ['project_id'], unique=False)
    op.create_index(op.f('ix_volume_snapshot_volume_id'), 'volume_snapshot', ['volume_id'], unique=False)
    op.create_table('volume_volume',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('user_id', sa.String(length=255), nullable=True),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=255), nullable=False),
    sa.Column('previous_status', sa.String(length=255), nullable=True),
    sa.Column('attach_status', sa.String(length=255), nullable=False),
    sa.Column('migration_status', sa.String(length=255), nullable=True),
    sa.Column('replication_status', sa.String(length=255), nullable=True),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('cluster_name', sa.String(length=255), nullable=True),
    sa.Column('display_name', sa.String(length=255), nullable=True),
    sa.Column('display_description', sa.String(length=255), nullable=True),
    sa.Column('volume_type_id', sa.String(length=36), nullable=True),
    sa.Column('availability_zone', sa.String(length=255), nullable=True),
    sa.Column('bootable', sa.Boolean(), nullable=False),
    sa.Column('multiattach', sa.Boolean(), nullable=False),
    sa.Column('snapshot_id', sa.String(length=36), nullable=True),
    sa.Column('source_volid', sa.String(length=36), nullable=True),
    sa.Column('backup_id', sa.String(length=36), nullable=True),
    sa.Column('group_id', sa.String(length=36), nullable=True),
    sa.Column('encryption_key_id', sa.String(length=36), nullable=True),
    sa.Column('provider_location', sa.String(length=255), nullable=True),
    sa.Column('provider_id', sa.String(length=255), nullable=True),
    sa.Column('service_uuid', sa.String(length=36), nullable=True),
    sa.Column('shared_targets', sa.Boolean(), nullable=True),
    sa.Column('use_quota', sa.Boolean(), nullable=False),
    sa.Column('metadata', sa.JSON(), nullable=False),
    sa.Column('admin_metadata', sa.JSON(), nullable=False),
    sa.Column('volume_image_metadata', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.Column('launched_at', sa.DateTime(), nullable=True),
    sa.Column('terminated_at', sa.DateTime(), nullable=True),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_volume_volume'))
    )
    op.create_index(op.f('ix_volume_volume_deleted'), 'volume_volume', ['deleted'], unique=False)
    op.create_index(op.f('ix_volume_volume_display_name'), 'volume_volume', ['display_name'], unique=False)
    op.create_index(op.f('ix_volume_volume_project_id'), 'volume_volume', ['project_id'], unique=False)
    op.create_index(op.f('ix_volume_volume_status'), 'volume_volume', ['status'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_volume_volume_status'), table_name='volume_volume')
    op.drop_index(op.f('ix_volume_volume_project_id'), table_name='volume_volume')
    op.drop_index(op.f('ix_volume_volume_display_name'), table_name='volume_volume')
    op.drop_index(op.f('ix_volume_volume_deleted'), table_name='volume_volume')
    op.drop_table('volume_volume')
    op.drop_index(op.f('ix_volume_snapshot_volume_id'), table_name='volume_snapshot')
    op.drop_index(op.f('ix_volume_snapshot_project_id'), table_name='volume_snapshot')
    op.drop_index(op.f('ix_volume_snapshot_deleted'), table_name='volume_snapshot')
    op.drop_table('volume_snapshot')
    op.drop_index(op.f('ix_volume_attachment_volume_id'), table_name='volume_attachment')
    op.drop_index(op.f('ix_volume_attachment_instance_uuid'), table_name='volume_attachment')
    op.drop_index(op.f('ix_volume_attachment_deleted'), table_name='volume_attachment')
    op.drop_table('volume_attachment')
