"""volume_backups: backups and volume transfers (BACKUPS)

Revision ID: 0013
Revises: 0012
"""

from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('volume_backup',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('user_id', sa.String(length=255), nullable=True),
    sa.Column('volume_id', sa.String(length=36), nullable=False),
    sa.Column('snapshot_id', sa.String(length=36), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('display_name', sa.String(length=255), nullable=True),
    sa.Column('display_description', sa.String(length=255), nullable=True),
    sa.Column('container', sa.String(length=255), nullable=True),
    sa.Column('availability_zone', sa.String(length=255), nullable=True),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('object_count', sa.Integer(), nullable=False),
    sa.Column('fail_reason', sa.String(length=255), nullable=True),
    sa.Column('parent_id', sa.String(length=36), nullable=True),
    sa.Column('data_timestamp', sa.DateTime(), nullable=True),
    sa.Column('restore_volume_id', sa.String(length=36), nullable=True),
    sa.Column('volume_previous_status', sa.String(length=32), nullable=True),
    sa.Column('driver', sa.String(length=32), nullable=True),
    sa.Column('service_metadata', sa.JSON(), nullable=True),
    sa.Column('volume_facts', sa.JSON(), nullable=True),
    sa.Column('metadata', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_volume_backup'))
    )
    op.create_index(op.f('ix_volume_backup_parent_id'), 'volume_backup', ['parent_id'], unique=False)
    op.create_index(op.f('ix_volume_backup_project_id'), 'volume_backup', ['project_id'], unique=False)
    op.create_index(op.f('ix_volume_backup_status'), 'volume_backup', ['status'], unique=False)
    op.create_index(op.f('ix_volume_backup_volume_id'), 'volume_backup', ['volume_id'], unique=False)
    op.create_table('volume_transfer',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('volume_id', sa.String(length=36), nullable=False),
    sa.Column('display_name', sa.String(length=255), nullable=True),
    sa.Column('salt', sa.String(length=255), nullable=False),
    sa.Column('crypt_hash', sa.String(length=255), nullable=False),
    sa.Column('source_project_id', sa.String(length=255), nullable=False),
    sa.Column('destination_project_id', sa.String(length=255), nullable=True),
    sa.Column('accepted', sa.Boolean(), nullable=False),
    sa.Column('no_snapshots', sa.Boolean(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=True),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_volume_transfer'))
    )
    op.create_index(op.f('ix_volume_transfer_deleted'), 'volume_transfer', ['deleted'], unique=False)
    op.create_index(op.f('ix_volume_transfer_source_project_id'), 'volume_transfer', ['source_project_id'], unique=False)
    op.create_index(op.f('ix_volume_transfer_volume_id'), 'volume_transfer', ['volume_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_volume_transfer_volume_id'), table_name='volume_transfer')
    op.drop_index(op.f('ix_volume_transfer_source_project_id'), table_name='volume_transfer')
    op.drop_index(op.f('ix_volume_transfer_deleted'), table_name='volume_transfer')
    op.drop_table('volume_transfer')
    op.drop_index(op.f('ix_volume_backup_volume_id'), table_name='volume_backup')
    op.drop_index(op.f('ix_volume_backup_status'), table_name='volume_backup')
    op.drop_index(op.f('ix_volume_backup_project_id'), table_name='volume_backup')
    op.drop_index(op.f('ix_volume_backup_parent_id'), table_name='volume_backup')
    op.drop_table('volume_backup')
