"""image: the image service's tables and core's durable task table

Revision ID: 0004
Revises: 0003
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(sa.JSON(), 'sqlite')


def upgrade() -> None:
    op.create_table('core_task',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('resource_id', sa.String(length=64), nullable=True),
    sa.Column('owner_project', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('payload', JSON, nullable=False),
    sa.Column('result', JSON, nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('progress', sa.Integer(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('worker', sa.String(length=64), nullable=True),
    sa.Column('lease_until', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_core_task'))
    )
    with op.batch_alter_table('core_task', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_core_task_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_core_task_resource_id'), ['resource_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_core_task_status'), ['status'], unique=False)

    op.create_table('image_image',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=30), nullable=False),
    sa.Column('visibility', sa.String(length=20), nullable=False),
    sa.Column('owner', sa.String(length=255), nullable=True),
    sa.Column('disk_format', sa.String(length=20), nullable=True),
    sa.Column('container_format', sa.String(length=20), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('virtual_size', sa.BigInteger(), nullable=True),
    sa.Column('checksum', sa.String(length=32), nullable=True),
    sa.Column('os_hash_algo', sa.String(length=64), nullable=True),
    sa.Column('os_hash_value', sa.String(length=128), nullable=True),
    sa.Column('min_disk', sa.Integer(), nullable=False),
    sa.Column('min_ram', sa.Integer(), nullable=False),
    sa.Column('protected', sa.Boolean(), nullable=False),
    sa.Column('os_hidden', sa.Boolean(), nullable=False),
    sa.Column('staged_location', sa.Text(), nullable=True),
    sa.Column('staged_size', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_image_image'))
    )
    with op.batch_alter_table('image_image', schema=None) as batch_op:
        for column in ('name', 'status', 'visibility', 'owner', 'created_at', 'updated_at'):
            batch_op.create_index(batch_op.f(f'ix_image_image_{column}'), [column], unique=False)

    op.create_table('image_property',
    sa.Column('image_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['image_id'], ['image_image.id'], name=op.f('fk_image_property_image_id_image_image'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('image_id', 'name', name=op.f('pk_image_property'))
    )
    op.create_table('image_tag',
    sa.Column('image_id', sa.String(length=36), nullable=False),
    sa.Column('value', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['image_id'], ['image_image.id'], name=op.f('fk_image_tag_image_id_image_image'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('image_id', 'value', name=op.f('pk_image_tag'))
    )
    op.create_table('image_member',
    sa.Column('image_id', sa.String(length=36), nullable=False),
    sa.Column('member', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['image_id'], ['image_image.id'], name=op.f('fk_image_member_image_id_image_image'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('image_id', 'member', name=op.f('pk_image_member'))
    )
    with op.batch_alter_table('image_member', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_image_member_member'), ['member'], unique=False)
    op.create_table('image_location',
    sa.Column('image_id', sa.String(length=36), nullable=False),
    sa.Column('store', sa.String(length=64), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['image_id'], ['image_image.id'], name=op.f('fk_image_location_image_id_image_image'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('image_id', 'store', name=op.f('pk_image_location'))
    )


    op.create_table('image_metadef_namespace',
    sa.Column('namespace', sa.String(length=80), nullable=False),
    sa.Column('display_name', sa.String(length=80), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('visibility', sa.String(length=32), nullable=False),
    sa.Column('protected', sa.Boolean(), nullable=False),
    sa.Column('owner', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('namespace', name=op.f('pk_image_metadef_namespace'))
    )
    op.create_table('image_metadef_item',
    sa.Column('namespace', sa.String(length=80), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('body', JSON, nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['namespace'], ['image_metadef_namespace.namespace'],
                            name=op.f('fk_image_metadef_item_namespace_image_metadef_namespace'),
                            onupdate='CASCADE', ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('namespace', 'kind', 'name', name=op.f('pk_image_metadef_item'))
    )


def downgrade() -> None:
    op.drop_table('image_metadef_item')
    op.drop_table('image_metadef_namespace')
    op.drop_table('image_location')
    with op.batch_alter_table('image_member', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_image_member_member'))
    op.drop_table('image_member')
    op.drop_table('image_tag')
    op.drop_table('image_property')
    with op.batch_alter_table('image_image', schema=None) as batch_op:
        for column in ('name', 'status', 'visibility', 'owner', 'created_at', 'updated_at'):
            batch_op.drop_index(batch_op.f(f'ix_image_image_{column}'))
    op.drop_table('image_image')
    with op.batch_alter_table('core_task', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_core_task_status'))
        batch_op.drop_index(batch_op.f('ix_core_task_resource_id'))
        batch_op.drop_index(batch_op.f('ix_core_task_kind'))
    op.drop_table('core_task')
