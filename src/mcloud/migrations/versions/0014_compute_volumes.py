"""compute_volumes: block device mappings (the volumes of servers)

Revision ID: 0014
Revises: 0013
"""

from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'compute_block_device_mapping',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('uuid', sa.String(length=36), nullable=False),
        sa.Column('instance_uuid', sa.String(length=36), nullable=False),
        sa.Column('volume_id', sa.String(length=36), nullable=True),
        sa.Column('attachment_id', sa.String(length=36), nullable=True),
        sa.Column('source_type', sa.String(length=16), nullable=False),
        sa.Column('destination_type', sa.String(length=16), nullable=False),
        sa.Column('image_id', sa.String(length=36), nullable=True),
        sa.Column('snapshot_id', sa.String(length=36), nullable=True),
        sa.Column('volume_size', sa.Integer(), nullable=True),
        sa.Column('volume_type', sa.String(length=255), nullable=True),
        sa.Column('boot_index', sa.Integer(), nullable=True),
        sa.Column('device_name', sa.String(length=255), nullable=True),
        sa.Column('disk_bus', sa.String(length=32), nullable=True),
        sa.Column('device_type', sa.String(length=32), nullable=True),
        sa.Column('delete_on_termination', sa.Boolean(), nullable=False),
        sa.Column('tag', sa.String(length=255), nullable=True),
        sa.Column('connection_info', sa.JSON(), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('uuid'),
    )
    op.create_index('ix_compute_block_device_mapping_instance_uuid', 'compute_block_device_mapping',
                    ['instance_uuid'])
    op.create_index('ix_compute_block_device_mapping_volume_id', 'compute_block_device_mapping', ['volume_id'])


def downgrade() -> None:
    op.drop_index('ix_compute_block_device_mapping_volume_id', table_name='compute_block_device_mapping')
    op.drop_index('ix_compute_block_device_mapping_instance_uuid', table_name='compute_block_device_mapping')
    op.drop_table('compute_block_device_mapping')
