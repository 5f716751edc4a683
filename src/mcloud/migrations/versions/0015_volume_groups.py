"""volume_groups: generic volume groups, their volume types and group snapshots

Revision ID: 0015
Revises: 0014
"""

from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('volume_group',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('user_id', sa.String(length=255), nullable=True),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('description', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=255), nullable=False),
    sa.Column('availability_zone', sa.String(length=255), nullable=True),
    sa.Column('group_type_id', sa.String(length=36), nullable=False),
    sa.Column('group_snapshot_id', sa.String(length=36), nullable=True),
    sa.Column('source_group_id', sa.String(length=36), nullable=True),
    sa.Column('replication_status', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_volume_group'))
    )
    with op.batch_alter_table('volume_group', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_volume_group_deleted'), ['deleted'], unique=False)
        batch_op.create_index(batch_op.f('ix_volume_group_group_type_id'), ['group_type_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_volume_group_project_id'), ['project_id'], unique=False)

    op.create_table('volume_group_snapshot',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('group_id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=False),
    sa.Column('user_id', sa.String(length=255), nullable=True),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('description', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=255), nullable=False),
    sa.Column('group_type_id', sa.String(length=36), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_volume_group_snapshot'))
    )
    with op.batch_alter_table('volume_group_snapshot', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_volume_group_snapshot_deleted'), ['deleted'], unique=False)
        batch_op.create_index(batch_op.f('ix_volume_group_snapshot_group_id'), ['group_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_volume_group_snapshot_project_id'), ['project_id'], unique=False)

    op.create_table('volume_group_volume_type',
    sa.Column('group_id', sa.String(length=36), nullable=False),
    sa.Column('volume_type_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['volume_group.id'], name=op.f('fk_volume_group_volume_type_group_id_volume_group'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('group_id', 'volume_type_id', name=op.f('pk_volume_group_volume_type'))
    )


def downgrade() -> None:
    op.drop_table('volume_group_volume_type')
    with op.batch_alter_table('volume_group_snapshot', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_volume_group_snapshot_project_id'))
        batch_op.drop_index(batch_op.f('ix_volume_group_snapshot_group_id'))
        batch_op.drop_index(batch_op.f('ix_volume_group_snapshot_deleted'))

    op.drop_table('volume_group_snapshot')
    with op.batch_alter_table('volume_group', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_volume_group_project_id'))
        batch_op.drop_index(batch_op.f('ix_volume_group_group_type_id'))
        batch_op.drop_index(batch_op.f('ix_volume_group_deleted'))

    op.drop_table('volume_group')
